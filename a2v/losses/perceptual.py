"""VGG perceptual loss — MAN supp. §2.1.4, Eq. 5 (Johnson et al. 2016).

``L_PL = Σ_i w_i · (1 / M_i) ‖F^(i)(real) − F^(i)(fake)‖₁`` over the chosen layers i of a frozen
VGG (:mod:`a2v.models.vgg`), ``M_i`` the number of elements of layer i; the paper's λ is the
phase's ``perceptual`` weight. Layer weights ``w_i`` default to 1 (Eq. 5 as written); pix2pixHD's
``[1/32, 1/16, 1/8, 1/4, 1]`` may be configured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from a2v.models.vgg import DEFAULT_LAYERS, BackboneInfo, VGGFeatures, build_vgg

PERCEPTUAL_KEYS = ("backbone", "weights", "download", "layers", "layer_weights")


class PerceptualLoss(nn.Module):
    """Perceptual distance between generated and real frames.

    Args:
        vgg: a frozen :class:`VGGFeatures`.
        layer_weights: one weight per layer of ``vgg`` (``None`` → all 1).
        info: where the weights came from (kept for logs and checkpoints).

    Forward:
        ``fake, real (B, 3, H, W)`` float in [-1, 1] → scalar float32 tensor. Gradients flow to
        ``fake`` only.

    Raises:
        ValueError: ``layer_weights`` of the wrong length or negative.
    """

    def __init__(self, vgg: VGGFeatures, layer_weights: Sequence[float] | None = None, info: BackboneInfo | None = None):
        super().__init__()
        n = len(vgg.layer_names)
        weights = [1.0] * n if layer_weights is None else [float(w) for w in layer_weights]
        if len(weights) != n or any(w < 0 for w in weights):
            raise ValueError(f"layer_weights needs {n} non-negative numbers (one per layer {vgg.layer_names}), got {layer_weights}")
        self.vgg = vgg
        self.layer_weights = weights
        self.info = info

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self.vgg(real)
        total = fake.new_zeros((), dtype=torch.float32)
        for w, f, r in zip(self.layer_weights, self.vgg(fake), target, strict=True):
            if w > 0:
                total = total + w * (f.float() - r.float()).abs().mean()
        return total


def build_perceptual(options: Mapping | None) -> PerceptualLoss:
    """Build the loss from ``training.perceptual`` options (CPU; move with ``.to(device)``).

    Keys: ``backbone`` (``"vgg19_imagenet"`` | ``"vgg16_hed"``), ``weights`` (file or null),
    ``download`` (bool), ``layers`` (list of names, default relu1_1 … relu5_1), ``layer_weights``.

    Raises:
        ValueError: unknown keys or values.
        a2v.models.vgg.PerceptualWeightsError: the weights are not available.
    """
    opts = dict(options or {})
    unknown = sorted(set(opts) - set(PERCEPTUAL_KEYS))
    if unknown:
        raise ValueError(f"training.perceptual: unknown keys {unknown}; known: {list(PERCEPTUAL_KEYS)}")
    vgg, info = build_vgg(
        opts.get("backbone", "vgg19_imagenet"),
        opts.get("weights"),
        bool(opts.get("download", False)),
        tuple(opts.get("layers") or DEFAULT_LAYERS),
    )
    return PerceptualLoss(vgg, opts.get("layer_weights"), info)
