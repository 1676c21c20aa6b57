"""One training step of the speech-driven GAN (Jain et al. §III–IV) on a batch of sequences.

A batch holds ``B`` windows of ``T`` consecutive frames of real clips, their reference stills and
standardised MFCC windows (:class:`a2v.features.windows.ClipWindows`).

1. The generator makes the ``T`` frames of every window from its still and audio, its GRUs starting
   from zero state at the window's first frame, with fresh ``N(0, 0.77²)`` noise.
2. Discriminator update (one Adam, lr ``training.d_lr`` = 2e-5, §IV), for those the phase turns on:
   the frame D on ``frame_samples`` frames per window drawn uniformly (the sampling function
   ``S(x)`` of §IV), each with the window's still; the sequence D on the whole window with its audio.
3. Generator update (Adam, lr ``training.lr`` = 2e-3, §IV) on the weighted terms of
   :data:`LOSS_TERMS`; "the loss of our GAN is an aggregate of the losses associated with each
   discriminator" (§IV) — the weights say how they aggregate.

The adversarial form is ``training.gan_loss`` (default ``original``: the log loss of GANs,
non-saturating for G; :mod:`a2v.losses.adversarial`).
"""

from __future__ import annotations

import torch

from a2v.losses.adversarial import d_adversarial, g_adversarial
from a2v.losses.reconstruction import lower_half_l1
from a2v.losses.sync_expert import SYNC_TERM, SYNC_TERM_DOC, sync_expert_loss
from a2v.recipes.base import Step
from a2v.training.phases import Phase
from a2v.training.settings import autocast, use_bf16

LOSS_TERMS: dict[str, str] = {
    "frame_adv": "frame discriminator's adversarial loss on S(x)-sampled (frame, still) pairs (§III.5, §IV)",
    "seq_adv": "sequence discriminator's adversarial loss on (video, audio) (§III.6, §IV)",
    "l1_lower": ("L1 on the lower half of every frame (a2v: the paper names only the adversarial terms; "
                 "the reconstruction term of its reference [2], Vougioukas et al.)"),
    SYNC_TERM: f"a2v addition: {SYNC_TERM_DOC}",
}
"""Every loss term an ``sdgan`` phase may weight: name → what it is (and where from)."""

LOSS_KEYS = tuple(LOSS_TERMS)
TERM_DISCRIMINATOR = {"frame_adv": "frame", "seq_adv": "sequence"}
"""The discriminator each adversarial term needs."""


def sample_frames(batch: int, length: int, k: int, device: torch.device) -> torch.Tensor:
    """``S(x)``: ``k`` distinct frame indices per window, uniform over ``0 … length − 1``, from
    torch's global RNG (seeded by the runner) → ``(batch, k)`` int64.

    Raises:
        ValueError: ``k < 1`` or ``k > length``.
    """
    if not 1 <= k <= length:
        raise ValueError(f"cannot sample {k} frames from windows of {length}")
    return torch.rand(batch, length).argsort(dim=1)[:, :k].to(device)


class SdganStep(Step):
    """One ``sdgan`` step (see the module docstring).

    Args:
        networks: ``generator``, ``frame_d``, ``sequence_d`` (:mod:`a2v.models.sdgan`).
        optimizers: ``g`` (generator), ``d`` (both discriminators).
        phase: weights (names of :data:`LOSS_TERMS`) and discriminators on.
        gan_loss: adversarial form. frame_samples: frames per window the frame D sees.
        device: where batches go. precision: ``training.precision``.
        sync_expert: the frozen lip-sync expert (:mod:`a2v.losses.sync_expert`) when ``sync`` is weighted.

    Call:
        ``step(batch)``: ``reference (B, 3, s, s)``, ``frames (B, T, 3, s, s)`` in [-1, 1],
        ``audio (B, T, time, coefficients)`` (and the raw ``mfcc (B, T, 20, 13)`` for ``sync``) → scalar tensors ``{"g_<term>", "g_total",
        "d_frame", "d_sequence", "d_total"}`` (those of the phase; :attr:`columns`).

    Raises:
        ValueError: ``frame_samples`` larger than the windows (at call); ``sync`` weighted without
            an expert.
    """

    def __init__(self, networks: dict, optimizers: dict, phase: Phase, gan_loss: str, frame_samples: int,
                 device: torch.device, precision: str = "auto", sync_expert=None):
        self.G, self.DF, self.DS = networks["generator"], networks["frame_d"], networks["sequence_d"]
        self.opt_g, self.opt_d = optimizers["g"], optimizers["d"]
        self.weights = phase.active()
        self.gan_loss, self.frame_samples = gan_loss, int(frame_samples)
        self.device = torch.device(device)
        self.bf16 = use_bf16(precision, self.device)
        self.frame_on = "frame" in phase.discriminators and "frame_adv" in self.weights
        self.seq_on = "sequence" in phase.discriminators and "seq_adv" in self.weights
        self.sync_expert = sync_expert
        if SYNC_TERM in self.weights and sync_expert is None:
            raise ValueError(f"phase {phase.name!r} weights {SYNC_TERM!r} but no sync expert was given")
        self.columns = [f"g_{k}" for k in self.weights] + ["g_total"]
        d_cols = (["d_frame"] if self.frame_on else []) + (["d_sequence"] if self.seq_on else [])
        self.columns += d_cols + (["d_total"] if d_cols else [])

    def describe(self) -> str:
        return (f"{'bf16 autocast' if self.bf16 else 'float32'} (GRUs float32), frame D on {self.frame_samples} "
                f"sampled frame(s) per window")

    def __call__(self, batch: dict) -> dict[str, torch.Tensor]:
        b = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        ref, real, audio = b["reference"], b["frames"], b["audio"].float()
        B, T = real.shape[:2]
        with autocast(self.device, self.bf16):
            fake, _ = self.G(ref, audio)
        fake = fake.float()
        if self.frame_on:
            idx = sample_frames(B, T, self.frame_samples, self.device)
            rows = torch.arange(B, device=self.device).unsqueeze(1).expand_as(idx)
            ref_k = ref.unsqueeze(1).expand(-1, idx.shape[1], -1, -1, -1).flatten(0, 1)
            real_k, fake_k = real[rows, idx].flatten(0, 1), fake[rows, idx].flatten(0, 1)

        out: dict[str, torch.Tensor] = {}
        if self.frame_on or self.seq_on:
            self.DF.requires_grad_(True)
            self.DS.requires_grad_(True)
            d_total = 0.0
            with autocast(self.device, self.bf16):
                if self.frame_on:
                    d_frame = d_adversarial(self.DF(real_k, ref_k), self.DF(fake_k.detach(), ref_k), self.gan_loss)
                    out["d_frame"] = d_frame.detach()
                    d_total = d_total + d_frame
                if self.seq_on:
                    d_seq = d_adversarial(self.DS(real, audio)["logits"], self.DS(fake.detach(), audio)["logits"], self.gan_loss)
                    out["d_sequence"] = d_seq.detach()
                    d_total = d_total + d_seq
            self.opt_d.zero_grad(set_to_none=True)
            d_total.backward()
            self.opt_d.step()
            out["d_total"] = d_total.detach()
        self.DF.requires_grad_(False)
        self.DS.requires_grad_(False)

        w, terms = self.weights, {}
        with autocast(self.device, self.bf16):
            if "frame_adv" in w:
                terms["frame_adv"] = g_adversarial(self.DF(fake_k, ref_k), self.gan_loss)
            if "seq_adv" in w:
                terms["seq_adv"] = g_adversarial(self.DS(fake, audio)["logits"], self.gan_loss)
        if "l1_lower" in w:
            terms["l1_lower"] = lower_half_l1(fake.flatten(0, 1), real.flatten(0, 1))
        if SYNC_TERM in w:
            terms[SYNC_TERM] = sync_expert_loss(self.sync_expert, fake, b["mfcc"])
        total = sum(w[k] * terms[k].float() for k in w)
        self.opt_g.zero_grad(set_to_none=True)
        total.backward()
        self.opt_g.step()
        result = {f"g_{k}": terms[k].detach() for k in w}
        result["g_total"] = total.detach()
        result.update(out)
        return result


__all__ = ["LOSS_KEYS", "LOSS_TERMS", "SdganStep", "TERM_DISCRIMINATOR", "sample_frames"]
