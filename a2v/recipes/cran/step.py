"""One CRAN training step (§3.2, Eqs. 1–5) on a batch of windows of T consecutive frames.

1. The generator encodes the reference face (``E_I``) and each frame's 35×12 MFCC map (``E_A``),
   runs the GRU over the hybrid codes (phases with ``recurrent: true``, RAE) or bypasses it (CAE)
   and decodes every frame of the window (:class:`a2v.models.cran.CranGenerator`).
2. Discriminator update (one Adam over the multi-task D), when the phase turns a head on and
   weights its generator term: image-aware head on real vs generated frames (Eq. 3,
   "unconditioned"); matching-aware head on (real frame, its audio code) vs (generated frame, its
   code) and (real frame, mismatched code) (Eq. 3, "conditioned").
3. Generator update (one Adam over ``E_A``, ``E_I``, GRU, decoder) on the weighted terms
   (:data:`LOSS_KEYS`):

   ================  ==========================================================  ===========
   key               term                                                        paper
   ================  ==========================================================  ===========
   ``rec``           mean |I_t − Ĩ_t| over the window's pixels                   Eq. 1
   ``perceptual``    perceptual L1 on a frozen VGG (:mod:`a2v.losses.perceptual`) Eq. 4
   ``adv_image``     image-aware adversarial term of L_G                         Eq. 2
   ``adv_match``     matching-aware adversarial term of L_G                      Eq. 2
   ``sync``          lip-sync expert, ½·d² (:mod:`a2v.losses.sync_expert`)       a2v addition
   ================  ==========================================================  ===========

   Eq. 5: ``F = L_rec + γ L_per + λ L_G + λ L_D`` with γ = 1e-4, λ = 1e-3 (§4.2): the phase's
   weights (``perceptual: 1.0e-4``, ``adv_image`` and ``adv_match``: ``1.0e-3``).

Choices the paper leaves open (a2v):

* a2v: mismatched audio by **shifting**: the window's audio codes rolled along time by
  ``mismatch_shift`` frames (default half the window: 35 frames = 1.4 s at T = 70), so each real
  frame meets the code of a frame of its own clip far from it; this works with a batch of one
  window, where shuffling across the batch would not.
* a2v: the matching-aware D loss weighs its two negatives ½ each, as GAN-CLS (Reed et al. [11],
  whose matching-aware discriminator the paper adopts): ``−log D(I, z) − ½ log(1 − D(I, ẑ)) −
  ½ log(1 − D(Ĩ, z))``. (Eq. 3 as printed gives the real pair ``log(1 − D(I, z_I))``, a sign slip.)
* a2v: the adversarial form is ``training.gan_loss`` (``original``: the log loss of Eqs. 2–3, the
  generator's non-saturating form ``−log D``, as :mod:`a2v.losses.adversarial` writes it).
* a2v: D reads the generator's audio codes ``z^A`` detached: D does not train ``E_A``, and the
  generator's matching term reaches it only through the generated frame.
* a2v: every term is a mean (per pixel / per feature element); the paper writes norms without
  saying how they are normalised, so its γ and λ are used as they are on means.
* D's loss is not scaled by λ: D has its own Adam, which is invariant to a constant factor.
"""

from __future__ import annotations

import torch

from a2v.losses.adversarial import d_adversarial, g_adversarial
from a2v.losses.sync_expert import SYNC_TERM, sync_expert_loss
from a2v.recipes.base import Step
from a2v.training.phases import Phase
from a2v.training.settings import autocast, use_bf16

LOSS_KEYS = ("rec", "perceptual", "adv_image", "adv_match", SYNC_TERM)
"""Every loss weight name a CRAN phase may set."""
HEAD_OF = {"adv_image": "image", "adv_match": "matching"}
"""The discriminator head each adversarial term needs."""


def mismatched(codes: torch.Tensor, shift: int) -> torch.Tensor:
    """Codes ``(B, T, D)`` rolled ``shift`` frames along time (frame t gets the code of frame
    ``(t − shift) mod T``): the mismatched condition ``ẑ`` of Eq. 3.

    Raises:
        ValueError: ``shift`` not in [1, T − 1] (the roll would give the matched codes back).
    """
    T = codes.shape[1]
    if not 1 <= shift < T:
        raise ValueError(f"mismatch shift must be in [1, {T - 1}] for windows of {T} frames, got {shift}")
    return codes.roll(shift, dims=1)


class CranStep(Step):
    """One CRAN step (see the module docstring).

    Args:
        networks: ``generator`` (:class:`~a2v.models.cran.CranGenerator`), ``discriminator``
            (:class:`~a2v.models.cran.CranDiscriminator`).
        optimizers: ``g`` (generator), ``d`` (discriminator).
        phase: weights, discriminators on, ``recurrent``.
        gan_loss: adversarial form (:data:`a2v.losses.adversarial.GAN_LOSSES`).
        mismatch_shift: frames the mismatched codes are shifted by (``None``: T // 2).
        device: where batches go.
        perceptual: :class:`~a2v.losses.perceptual.PerceptualLoss`, needed when ``perceptual`` weighs > 0.
        precision: ``training.precision``.
        sync_expert: the frozen lip-sync expert, needed when ``sync`` weighs > 0.

    Call:
        ``step(batch)`` with a batch of :class:`a2v.recipes.cran.StandardisedWindows` (``reference
        (B, 3, S, S)``, ``frames (B, T, 3, S, S)`` in [-1, 1], ``mfcc_cran (B, T, 35, 12)``
        standardised; raw ``mfcc (B, T, 20, 13)`` for ``sync``) → scalar tensors ``g_<term>`` (unweighted), ``g_total``, and when D trains
        ``d_image`` / ``d_match`` / ``d_total``.

    Raises:
        ValueError: ``perceptual`` or ``sync`` weighted without a network; a mismatch shift outside [1, T − 1].
    """

    def __init__(self, networks: dict, optimizers: dict, phase: Phase, gan_loss: str, mismatch_shift: int | None,
                 device: torch.device, perceptual=None, precision: str = "auto", sync_expert=None):
        self.G, self.D = networks["generator"], networks["discriminator"]
        self.opt_g, self.opt_d = optimizers["g"], optimizers["d"]
        self.weights = phase.active()
        self.recurrent = bool(phase.options["recurrent"])
        self.gan_loss, self.mismatch_shift = gan_loss, mismatch_shift
        self.device = torch.device(device)
        self.bf16 = use_bf16(precision, self.device)
        if "perceptual" in self.weights and perceptual is None:
            raise ValueError(f"phase {phase.name!r} weights 'perceptual' but no perceptual network was given")
        self.perceptual = perceptual
        if SYNC_TERM in self.weights and sync_expert is None:
            raise ValueError(f"phase {phase.name!r} weights {SYNC_TERM!r} but no sync expert was given")
        self.sync_expert = sync_expert
        self.heads = [h for k, h in HEAD_OF.items() if k in self.weights and h in phase.discriminators]
        self.columns = [f"g_{k}" for k in self.weights] + ["g_total"]
        d_cols = [f"d_{'image' if h == 'image' else 'match'}" for h in self.heads]
        self.columns += d_cols + (["d_total"] if d_cols else [])
        self.info: dict = {}

    def describe(self) -> str:
        return (f"{'RAE (GRU on)' if self.recurrent else 'CAE (GRU bypassed)'}, "
                f"D heads {self.heads or 'off'}, {'bf16 autocast' if self.bf16 else 'float32'}")

    def __call__(self, batch: dict) -> dict[str, torch.Tensor]:
        b = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        ref, real, mfcc = b["reference"], b["frames"], b["mfcc_cran"]
        B, T = real.shape[:2]
        self.G.set_recurrent(self.recurrent)
        with autocast(self.device, self.bf16):
            fake, z_a, _ = self.G(ref, mfcc)
        fake_f, real_f = fake.float().flatten(0, 1), real.flatten(0, 1)
        z = z_a.detach().float()
        z_f = z.flatten(0, 1)
        shift = self.mismatch_shift or T // 2

        out: dict[str, torch.Tensor] = {}
        if self.heads:
            self.D.requires_grad_(True)
            d_total = 0.0
            with autocast(self.device, self.bf16):
                h_real, h_fake = self.D.trunk(real_f), self.D.trunk(fake_f.detach())
                if "image" in self.heads:
                    d_image = d_adversarial(self.D.image_head(h_real), self.D.image_head(h_fake), self.gan_loss)
                    out["d_image"] = d_image.detach()
                    d_total = d_total + d_image
                if "matching" in self.heads:
                    z_mis = mismatched(z, shift).flatten(0, 1)
                    real_m = self.D.match_head(h_real, z_f)
                    d_match = 0.5 * (d_adversarial(real_m, self.D.match_head(h_fake, z_f), self.gan_loss)
                                     + d_adversarial(real_m, self.D.match_head(h_real, z_mis), self.gan_loss))
                    out["d_match"] = d_match.detach()
                    d_total = d_total + d_match
            self.opt_d.zero_grad(set_to_none=True)
            d_total.backward()
            self.opt_d.step()
            out["d_total"] = d_total.detach()
        self.D.requires_grad_(False)

        w, terms = self.weights, {}
        if "rec" in w:
            terms["rec"] = (fake_f - real_f).abs().mean()
        with autocast(self.device, self.bf16):
            if "perceptual" in w:
                terms["perceptual"] = self.perceptual(fake_f, real_f).float()
            if "adv_image" in w or "adv_match" in w:
                h = self.D.trunk(fake_f)
                if "adv_image" in w:
                    terms["adv_image"] = g_adversarial(self.D.image_head(h), self.gan_loss)
                if "adv_match" in w:
                    terms["adv_match"] = g_adversarial(self.D.match_head(h, z_f), self.gan_loss)
        if SYNC_TERM in w:
            terms[SYNC_TERM] = sync_expert_loss(self.sync_expert, fake.float(), b["mfcc"])
        total = sum(w[k] * terms[k].float() for k in w)
        self.opt_g.zero_grad(set_to_none=True)
        total.backward()
        self.opt_g.step()
        result = {f"g_{k}": terms[k].detach() for k in w}
        result["g_total"] = total.detach()
        result.update(out)
        return result
