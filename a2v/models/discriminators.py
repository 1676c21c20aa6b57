"""Multi-scale PatchGAN frame discriminator of MAN (§3.0.2, supp. §1.2, Eq. 3).

pix2pixHD's multi-scale discriminator (Wang et al. 2018) with spectral normalisation instead of
instance normalisation; each scale is a PatchGAN whose last layer is a convolution. Before that
last layer, a U-GAT-IT class-activation-map layer yields two global logits (from average and
max pooling) — the CAM logits ``n_D`` of MAN Eq. 3 — and re-weights the features with the CAM.

The discriminator is conditioned on the reference frame: its input is the (real or generated)
frame concatenated on channels with the reference frame, ``(B, 6, S, S)``. Scale ``k`` sees the
input average-pooled ``k`` times by 2 (3×3 window, stride 2, as in pix2pixHD).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from a2v.models.blocks import sn_conv2d
from a2v.settings import dataclass_from_dict


class PatchDiscriminator(nn.Module):
    """One PatchGAN scale (pix2pixHD ``NLayerDiscriminator``), spectral norm, CAM before the last conv.

    Layers: ``SN conv4×4/2 → LReLU``, then ``n_layers − 1`` × ``SN conv4×4/2 → LReLU`` (width
    doubling up to ``max_channels``), ``SN conv4×4/1 → LReLU``, CAM (``cam=True``),
    ``SN conv4×4/1 → 1`` patch logits. Padding 2, as in pix2pixHD.

    Forward:
        ``x (B, in_channels, H, W)`` → dict with ``features``: list of the ``n_layers + 1``
        intermediate maps (for feature matching), ``logits``: ``(B, 1, h, w)`` patch logits,
        ``cam_logits``: ``(B, 2)`` (absent when ``cam=False``).
    """

    def __init__(self, in_channels: int = 6, base_channels: int = 64, n_layers: int = 3, max_channels: int = 512, cam: bool = True):
        super().__init__()
        nf = base_channels
        blocks = [nn.Sequential(sn_conv2d(in_channels, nf, 4, 2, 2), nn.LeakyReLU(0.2, inplace=True))]
        for _ in range(1, n_layers):
            prev, nf = nf, min(nf * 2, max_channels)
            blocks.append(nn.Sequential(sn_conv2d(prev, nf, 4, 2, 2), nn.LeakyReLU(0.2, inplace=True)))
        prev, nf = nf, min(nf * 2, max_channels)
        blocks.append(nn.Sequential(sn_conv2d(prev, nf, 4, 1, 2), nn.LeakyReLU(0.2, inplace=True)))
        self.blocks = nn.ModuleList(blocks)
        self.use_cam = cam
        if cam:
            self.gap_fc = spectral_norm(nn.Linear(nf, 1, bias=False))
            self.gmp_fc = spectral_norm(nn.Linear(nf, 1, bias=False))
            self.cam_fuse = sn_conv2d(2 * nf, nf, 1)
        self.last = sn_conv2d(nf, 1, 4, 1, 2)

    def forward(self, x: torch.Tensor) -> dict:
        features = []
        for block in self.blocks:
            x = block(x)
            features.append(x)
        out: dict = {"features": features}
        if self.use_cam:
            gap_logit = self.gap_fc(x.mean(dim=(2, 3)))
            gmp_logit = self.gmp_fc(x.amax(dim=(2, 3)))
            h = torch.cat([x * self.gap_fc.weight.reshape(1, -1, 1, 1), x * self.gmp_fc.weight.reshape(1, -1, 1, 1)], dim=1)
            x = F.leaky_relu(self.cam_fuse(h), 0.2)
            out["cam_logits"] = torch.cat([gap_logit, gmp_logit], dim=1)
        out["logits"] = self.last(x)
        return out


@dataclass
class DiscriminatorConfig:
    """Configuration of :class:`MultiScalePatchGAN` (config key ``model.discriminator``).

    Attributes:
        n_scales: number of scales (3, pix2pixHD).
        base_channels: width of the first layer (64).
        n_layers: stride-2 layers per scale (3).
        max_channels: width cap (512).
        cam: CAM logits at each scale (MAN Eq. 3).
    """

    n_scales: int = 3
    base_channels: int = 64
    n_layers: int = 3
    max_channels: int = 512
    cam: bool = True

    @classmethod
    def from_dict(cls, d: dict | None) -> "DiscriminatorConfig":
        """Build from a dict; unknown keys raise ``ValueError``."""
        return dataclass_from_dict(cls, d, "model.discriminator")


class MultiScalePatchGAN(nn.Module):
    """pix2pixHD multi-scale PatchGAN with spectral norm and CAM logits (MAN §3.0.2).

    Args:
        n_scales: scales (full, /2, /4 for 3).
        in_channels: 6 (frame + reference, RGB each).
        base_channels, n_layers, max_channels, cam: per-scale :class:`PatchDiscriminator` settings.

    Forward:
        ``frame (B, 3, S, S)`` float in [-1, 1], ``reference (B, 3, S, S)`` float in [-1, 1] →
        list (one per scale, finest first) of :class:`PatchDiscriminator` output dicts.
    """

    def __init__(self, n_scales: int = 3, in_channels: int = 6, base_channels: int = 64, n_layers: int = 3, max_channels: int = 512, cam: bool = True):
        super().__init__()
        if n_scales < 1:
            raise ValueError(f"n_scales must be >= 1, got {n_scales}")
        self.scales = nn.ModuleList(
            PatchDiscriminator(in_channels, base_channels, n_layers, max_channels, cam) for _ in range(n_scales)
        )

    @classmethod
    def from_config(cls, cfg: DiscriminatorConfig) -> "MultiScalePatchGAN":
        """Build from a :class:`DiscriminatorConfig`."""
        return cls(cfg.n_scales, 6, cfg.base_channels, cfg.n_layers, cfg.max_channels, cfg.cam)

    def forward(self, frame: torch.Tensor, reference: torch.Tensor) -> list[dict]:
        if frame.shape != reference.shape or frame.ndim != 4 or frame.shape[1] != 3:
            raise ValueError(f"frame and reference must both be (B, 3, S, S); got {tuple(frame.shape)} and {tuple(reference.shape)}")
        return pyramid(self.scales, torch.cat([frame, reference], dim=1))


def pyramid(scales: nn.ModuleList, x: torch.Tensor) -> list[dict]:
    """Run PatchGAN ``scales`` on ``x`` (B, C, H, W), average-pooled by 2 (3×3 window, stride 2,
    as in pix2pixHD) before every scale after the first; one output dict per scale, finest first."""
    outs = []
    for i, scale in enumerate(scales):
        if i > 0:
            x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
        outs.append(scale(x))
    return outs
