"""One OneShotA2V training step (§3, §4) on a batch of windows of L consecutive frames.

1. The content encoder turns each frame's 200 ms audio window into a code; the SPADE generator
   makes every frame of the window from the reference face and its code (frames are independent:
   the generator has no recurrence, §3.1).
2. Discriminator update (one Adam over the frame D and the temporal D), for those the phase turns
   on: the multi-scale frame D on (frame, reference) pairs of every frame, the multi-scale
   temporal D on the whole window (§3.2.1–3.2.2).
3. Generator update on the weighted terms (:data:`LOSS_KEYS`):

   ==================  ==================================================================  ===========
   key                 term                                                                paper
   ==================  ==================================================================  ===========
   ``adv``             frame-D adversarial loss                                            §4.1.1
   ``fm``              frame-D feature matching                                            §4.1.3
   ``perceptual``      VGG perceptual L1 (:mod:`a2v.losses.perceptual`)                    §4.1.4
   ``l1_lower``        L1 on the lower half of the frame                                   §4.1.2
   ``temporal_adv``    temporal-D adversarial loss (TAL)                                   §3.2.2
   ``sync``            contrastive loss of the frozen sync D on in-sync pairs (CL)         §4.1.5
   ``blink``           L1 between the EAR of real and generated frames (BL)                §4.1.6
   ==================  ==================================================================  ===========

a2v choices: ``sync`` is the contrastive loss's in-sync half, ``½·d²`` (the generator cannot
change the audio, so the shifted-pair half gives it no direction worth following); it is taken on
every 5-frame sub-window of the L-frame window with the MFCC of its centre frame. ``blink`` runs
the eye-landmark regressor (:mod:`a2v.models.eye_landmarks`) on both the real and the generated
frame, so the regressor's own bias cancels, and compares their EAR. The learning rate stays
constant, then decays linearly to 0 over the phase's last ``lr_decay`` share of steps (§6.1:
constant for 50 epochs, then to 0 over 100; the curriculum sets ``lr_decay`` on its last phase).
"""

from __future__ import annotations

import torch

from a2v.losses.adversarial import d_adversarial, g_adversarial
from a2v.losses.feature_matching import feature_matching
from a2v.losses.sync_expert import sync_expert_loss
from a2v.losses.reconstruction import lower_half_l1
from a2v.models.eye_landmarks import ear_torch
from a2v.recipes.base import Step
from a2v.training.phases import Phase
from a2v.training.settings import autocast, use_bf16

LOSS_KEYS = ("adv", "fm", "perceptual", "l1_lower", "temporal_adv", "sync", "blink")
"""Every loss weight name a OneShotA2V phase may set."""


def linear_decay(step: int, steps: int, decay: float) -> float:
    """Learning-rate factor at 0-based ``step`` of ``steps``: 1 until the last ``decay`` share of the
    steps, then linear to 0 at the end (§6.1)."""
    if decay <= 0:
        return 1.0
    start = steps * (1.0 - decay)
    return 1.0 if step < start else max(0.0, 1.0 - (step - start) / max(1.0, steps - start))


class OneShotStep(Step):
    """One OneShotA2V step (see the module docstring).

    Args:
        networks: ``content``, ``generator``, ``frame_d``, ``temporal_d``.
        optimizers: ``g`` (content encoder + generator), ``d`` (both discriminators).
        phase: weights, discriminators on, ``lr_decay``.
        gan_loss: adversarial form.
        feature: the audio feature the content encoder reads (``content`` | ``mfcc`` | ``content_mel``).
        normalizer: MFCC standardisation (for ``feature == "mfcc"``).
        device: where batches go.
        perceptual: :class:`~a2v.losses.perceptual.PerceptualLoss` (when ``perceptual`` weighs > 0).
        sync_d: the frozen :class:`~a2v.training.sync_discriminator.SyncDiscriminator` (``sync``).
        eye_net: the frozen eye-landmark regressor (``blink``).

    Call:
        ``step(batch)`` with a :class:`~a2v.features.windows.ClipWindows` batch (``reference
        (B, 3, S, S)``, ``frames (B, L, 3, S, S)``, the feature ``(B, L, …)`` and raw ``mfcc
        (B, L, 20, 13)``) → ``{"g_<term>", "g_total", "d_frame", "d_temporal", "d_total"}``.
    """

    def __init__(self, networks: dict, optimizers: dict, phase: Phase, gan_loss: str, feature: str, normalizer,
                 device: torch.device, perceptual=None, sync_d=None, eye_net=None, precision: str = "auto"):
        self.C, self.G = networks["content"], networks["generator"]
        self.DF, self.DT = networks["frame_d"], networks["temporal_d"]
        self.opt_g, self.opt_d = optimizers["g"], optimizers["d"]
        self.weights = phase.active()
        self.gan_loss, self.feature, self.normalizer = gan_loss, feature, normalizer
        self.device = torch.device(device)
        self.bf16 = use_bf16(precision, self.device)
        self.perceptual, self.sync_d, self.eye_net = perceptual, sync_d, eye_net
        self.frame_on = "frame" in phase.discriminators and any(k in self.weights for k in ("adv", "fm"))
        self.temporal_on = "temporal" in phase.discriminators and "temporal_adv" in self.weights
        for key, net in (("perceptual", perceptual), ("sync", sync_d), ("blink", eye_net)):
            if key in self.weights and net is None:
                raise ValueError(f"phase {phase.name!r} weights {key!r} but its network was not given")
        self.lr_decay = float(phase.options.get("lr_decay") or 0.0)
        self.base_lrs = {id(o): [g["lr"] for g in o.param_groups] for o in (self.opt_g, self.opt_d)}
        self.columns = [f"g_{k}" for k in self.weights] + ["g_total"]
        d_cols = (["d_frame"] if self.frame_on else []) + (["d_temporal"] if self.temporal_on else [])
        self.columns += d_cols + (["d_total"] if d_cols else []) + ["lr"]
        self.lr_factor = 1.0

    def describe(self) -> str:
        return (f"content from {self.feature}, {'bf16 autocast' if self.bf16 else 'float32'}"
                + (f", lr decays linearly over the last {self.lr_decay:.0%} of the phase" if self.lr_decay else ""))

    def set_step(self, step: int, steps: int) -> None:
        self.lr_factor = linear_decay(step, steps, self.lr_decay)
        for opt in (self.opt_g, self.opt_d):
            for group, lr in zip(opt.param_groups, self.base_lrs[id(opt)]):
                group["lr"] = lr * self.lr_factor

    def _content(self, b: dict) -> torch.Tensor:
        if self.feature == "content_mel":  # the encoder itself in the model: segment + frame windows
            return self.C(b["content_mel"], b["content_index"])
        x = b[self.feature]
        B, L = x.shape[:2]
        x = x.flatten(0, 1).float()
        if self.feature == "mfcc":
            x = self.normalizer.mfcc(x)
        return self.C(x)

    def __call__(self, batch: dict) -> dict[str, torch.Tensor]:
        b = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        ref, real = b["reference"], b["frames"]
        B, L = real.shape[:2]
        ref_l = ref.unsqueeze(1).expand(-1, L, -1, -1, -1).flatten(0, 1)
        real_f = real.flatten(0, 1)
        with autocast(self.device, self.bf16):
            fake_f = self.G(ref_l, self._content(b)).float()
        fake = fake_f.view_as(real)

        out: dict[str, torch.Tensor] = {}
        d_total = None
        if self.frame_on or self.temporal_on:
            self.DF.requires_grad_(True)
            self.DT.requires_grad_(True)
            d_total = 0.0
            with autocast(self.device, self.bf16):
                if self.frame_on:
                    d_frame = d_adversarial([o["logits"] for o in self.DF(real_f, ref_l)],
                                            [o["logits"] for o in self.DF(fake_f.detach(), ref_l)], self.gan_loss)
                    out["d_frame"] = d_frame.detach()
                    d_total = d_total + d_frame
                if self.temporal_on:
                    d_temp = d_adversarial([o["logits"] for o in self.DT(real)], [o["logits"] for o in self.DT(fake.detach())], self.gan_loss)
                    out["d_temporal"] = d_temp.detach()
                    d_total = d_total + d_temp
            self.opt_d.zero_grad(set_to_none=True)
            d_total.backward()
            self.opt_d.step()
            out["d_total"] = d_total.detach()
        self.DF.requires_grad_(False)
        self.DT.requires_grad_(False)

        w, terms = self.weights, {}
        with autocast(self.device, self.bf16):
            if "adv" in w or "fm" in w:
                d_fake = self.DF(fake_f, ref_l)
                if "adv" in w:
                    terms["adv"] = g_adversarial([o["logits"] for o in d_fake], self.gan_loss)
                if "fm" in w:
                    with torch.no_grad():
                        d_real = self.DF(real_f, ref_l)
                    terms["fm"] = feature_matching(d_real, d_fake)
            if "temporal_adv" in w:
                terms["temporal_adv"] = g_adversarial([o["logits"] for o in self.DT(fake)], self.gan_loss)
            if "perceptual" in w:
                terms["perceptual"] = self.perceptual(fake_f, real_f).float()
        if "l1_lower" in w:
            terms["l1_lower"] = lower_half_l1(fake_f, real_f)
        if "sync" in w:
            terms["sync"] = sync_expert_loss(self.sync_d, fake, b["mfcc"])
        if "blink" in w:
            with torch.no_grad():
                ear_real = ear_torch(self.eye_net(real_f))
            terms["blink"] = (ear_torch(self.eye_net(fake_f)) - ear_real).abs().mean()
        total = sum(w[k] * terms[k].float() for k in w)
        self.opt_g.zero_grad(set_to_none=True)
        total.backward()
        self.opt_g.step()
        result = {f"g_{k}": terms[k].detach() for k in w}
        result["g_total"] = total.detach()
        result.update(out)
        result["lr"] = torch.tensor(self.base_lrs[id(self.opt_g)][0] * self.lr_factor)
        return result
