"""One MAN training step (MAN §4.2, supp. §2.1).

0. With ``training.sequence_length`` L > 1 a sample is L consecutive frames of a clip
   (:class:`a2v.training.data.FrameWindows`): the B·L frames go through steps 1–4 as one batch,
   and the lip-sync expert (``sync``) scores the generated frames as B windows of L.
1. The predictor reads the previous 5 real frames and mel[t] (when its MSE is weighted or the
   phase's motion source is ``"predicted"``).
2. The generator makes frame t from the reference, the motion (shard flow/heatmaps or the
   prediction, see :mod:`a2v.recipes.man`) and the audio features of t.
3. If the phase turns the ``frame`` discriminator on: one D update on (real, generated.detach()),
   each concatenated with the reference (``adv`` + ``cam`` terms).
4. One update of generator + predictor (one Adam) on the weighted G terms (the perceptual one
   through a frozen VGG, :mod:`a2v.models.vgg`) and the predictor MSE.

Precision (``training.precision``): ``"auto"`` runs the forward passes under bf16 autocast with
channels_last tensors on CUDA and in float32 on the CPU; ``"bf16"`` / ``"fp32"`` force one.
Loss terms and optimiser state are float32 in every case.
"""

from __future__ import annotations

import torch

from a2v.losses.sync_expert import SYNC_TERM, sync_expert_loss
from a2v.models.man import ManConfig
from a2v.recipes.base import Step
from a2v.recipes.man.losses import DiscriminatorLoss, GeneratorLoss
from a2v.training.phases import Phase
from a2v.training.settings import autocast, use_bf16, use_channels_last


def to_device(batch: dict, device: torch.device, channels_last: bool) -> dict:
    """Every tensor of a batch on ``device`` (4-D ones in channels_last memory format if asked)."""
    out = {}
    for k, v in batch.items():
        v = v.to(device, non_blocking=True)
        if channels_last and v.ndim == 4:
            v = v.contiguous(memory_format=torch.channels_last)
        out[k] = v
    return out


class ManStep(Step):
    """One MAN training step (predictor → generator → optional D update → G + predictor update).

    Args:
        networks: ``generator``, ``predictor``, ``discriminator`` (on ``device``, train mode).
        optimizers: ``g`` (Adam over generator + predictor), ``d`` (Adam over the discriminator).
        model: the generator's :class:`ManConfig`.
        phase: loss weights, discriminators on, ``motion_source`` / ``detach_motion`` options.
        gan_loss: adversarial form of ``adv`` and ``cam``.
        device: where batches go.
        perceptual: the perceptual loss network, needed when the phase weights ``perceptual``.
        precision, channels_last: see the module docstring.
        sync_expert: the frozen lip-sync expert, needed when the phase weights ``sync``.

    Call:
        ``step(batch)`` with a collated :class:`~a2v.training.data.FrameDataset` batch (or
        :class:`~a2v.training.data.FrameWindows`: every tensor ``(B, L, …)``) →
        ``{"g_<term>", "g_total", "d_<term>", "d_total"}`` scalar tensors (``d_*`` only when D is on).
    """

    def __init__(self, networks: dict, optimizers: dict, model: ManConfig, phase: Phase, gan_loss: str,
                 device: torch.device, perceptual: torch.nn.Module | None = None, precision: str = "auto",
                 channels_last: bool | None = None, sync_expert: torch.nn.Module | None = None):
        self.G, self.P, self.D = networks["generator"], networks["predictor"], networks["discriminator"]
        self.opt_g, self.opt_d = optimizers["g"], optimizers["d"]
        self.man, self.phase = model, phase
        self.motion_source, self.detach_motion = phase.options["motion_source"], phase.options["detach_motion"]
        self.device = torch.device(device)
        self.bf16 = use_bf16(precision, self.device)
        self.channels_last = use_channels_last(channels_last, self.device)
        self.g_loss = GeneratorLoss(phase.losses, gan_loss, model.effective_flow_scale, perceptual)
        self.d_loss = DiscriminatorLoss(phase.losses, gan_loss)
        if SYNC_TERM in self.g_loss.weights and sync_expert is None:
            raise ValueError("the phase weights 'sync' but no lip-sync expert was given")
        self.sync_expert = sync_expert
        self.d_on = "frame" in phase.discriminators and bool(self.d_loss.active())
        self.need_d_for_g = any(k in self.g_loss.weights for k in ("adv", "fm", "cam"))
        pred_key = "flow_mse" if model.motion == "flow" else "keypoint_mse"
        self.run_pred = (model.use_motion and self.motion_source == "predicted") or pred_key in self.g_loss.weights
        self.target_key = "flow" if model.motion == "flow" else "heatmaps"
        self.columns = [f"g_{k}" for k in self.g_loss.active()] + ["g_total"]
        if self.d_on:
            self.columns += [f"d_{k}" for k in self.d_loss.active()] + ["d_total"]
        self.info = {"perceptual_backbone": perceptual.info.describe() if perceptual is not None else None}

    def describe(self) -> str:
        return (f"motion {self.motion_source}, {'bf16 autocast' if self.bf16 else 'float32'}"
                f"{', channels_last' if self.channels_last else ''}")

    def __call__(self, batch: dict) -> dict[str, torch.Tensor]:
        G, P, D, man = self.G, self.P, self.D, self.man
        windows = batch["target"].ndim == 5  # FrameWindows: (B, L, …)
        if windows:
            B, L = batch["target"].shape[:2]
            mfcc_raw = batch.pop("mfcc_raw", None)
            batch = {k: v.flatten(0, 1) for k, v in batch.items()}
        b = to_device(batch, self.device, self.channels_last)
        ref, real = b["reference"], b["target"]
        with autocast(self.device, self.bf16):
            pred = P(b["prev_frames"], b["mel"]) if self.run_pred else None
            if not man.use_motion:
                motion = None
            elif self.motion_source == "ground_truth":
                motion = b[self.target_key]
            else:
                motion = pred.detach() if self.detach_motion else pred
            fake = G(ref, motion, b["mfcc"], b["mel"], b["f0_bin"], b["energy_bin"])["frame"]

        d_terms, d_real = {}, None
        if self.d_on:
            D.requires_grad_(True)
            with autocast(self.device, self.bf16):
                d_real = D(real, ref)
                d_fake = D(fake.detach(), ref)
            d_terms = self.d_loss(d_real, d_fake)
            self.opt_d.zero_grad(set_to_none=True)
            d_terms["total"].backward()
            self.opt_d.step()
        D.requires_grad_(False)
        d_fake_g = None
        if self.need_d_for_g:
            with autocast(self.device, self.bf16):
                d_fake_g = D(fake, ref)
                if d_real is None:
                    d_real = D(real, ref)
        sync = None
        if SYNC_TERM in self.g_loss.weights:
            if not windows or mfcc_raw is None:
                raise ValueError("the sync term needs windows of frames with mfcc_raw (training.sequence_length >= 5)")
            sync = sync_expert_loss(self.sync_expert, fake.float().reshape(B, L, *fake.shape[1:]), mfcc_raw.to(self.device))
        with autocast(self.device, self.bf16):  # the perceptual VGG runs in bf16 on CUDA; the terms are float32
            g_terms = self.g_loss(fake.float(), real, d_fake_g, d_real, pred, b.get(self.target_key), sync)
        self.opt_g.zero_grad(set_to_none=True)
        g_terms["total"].backward()
        self.opt_g.step()
        out = {f"g_{k}": v.detach() for k, v in g_terms.items()}
        out.update({f"d_{k}": v.detach() for k, v in d_terms.items()})
        return out
