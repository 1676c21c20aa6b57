"""The OneShotA2V generator: SPADE residual blocks conditioned on the reference face, driven by a
speech-content code (OneShotA2V §3.1, Fig. 1; SPADE: Park et al., CVPR 2019, §3 and appendix A).

Data flow for one frame::

    audio window ──content encoder──► c (B, D) ──fc──► seed (B, C0, s0, s0)
    reference face (B, 3, S, S) ───────────────┐
                                               ▼ (resized to each scale)
    seed ─► SPADEResBlock ─► ×2 ─► SPADEResBlock ─► … ─► SPADEResBlock ─► conv 3×3 ─► tanh ─► frame (B, 3, S, S)

* **SPADE** (Park et al. Eq. 1): ``x ↦ norm(x) · (1 + γ(m)) + β(m)`` with a parameter-free
  normalisation and γ/β predicted per pixel by a small conv net from the conditioning map ``m``.
  OneShotA2V replaces SPADE's semantic map by the aligned face image, "in an upsampling manner":
  ``m`` is the reference resized (area / bilinear) to each block's resolution.
* **a2v:** ``1 + γ`` (SPADE's released code) rather than ``γ``, so a block starts near identity.
* **a2v:** the paper does not say where the audio enters beyond "the initial layers of G use
  deepspeech2 layers": the content code makes the seed map (SPADE's ``z`` path) and, with
  ``audio_in_spade: true`` (default), is also broadcast as extra channels of every SPADE's
  conditioning map, so the mouth can follow the audio at every scale, not only at the 4×4 seed.
* **a2v:** the parameter-free norm is ``BatchNorm2d(affine=False)`` (SPADE's generator default;
  ``norm: instance`` switches to instance norm); spectral norm on the generator's convolutions
  as in SPADE.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from a2v.settings import dataclass_from_dict

NORMS = ("batch", "instance")


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=False)
    return nn.InstanceNorm2d(channels, affine=False)


def _sn(module: nn.Module, on: bool) -> nn.Module:
    return spectral_norm(module) if on else module


def resize_map(m: torch.Tensor, size: int) -> torch.Tensor:
    """A conditioning map ``(B, C, H, W)`` resized to ``(B, C, size, size)`` (area when shrinking,
    bilinear when growing)."""
    if m.shape[-1] == size and m.shape[-2] == size:
        return m
    if m.shape[-1] > size:
        return F.adaptive_avg_pool2d(m, size)
    return F.interpolate(m, size=(size, size), mode="bilinear", align_corners=False)


class SPADE(nn.Module):
    """Spatially-adaptive normalisation (Park et al. 2019, Eq. 1).

    Args:
        channels: C of the normalised features.
        cond_channels: channels of the conditioning map (3 for the face, + the audio code's).
        hidden: width of the shared conv (SPADE: 128).
        norm: ``"batch"`` or ``"instance"`` (parameter-free).

    Forward:
        ``x (B, C, H, W)`` float, ``cond (B, cond_channels, H, W)`` float (already at x's size)
        → ``(B, C, H, W)``.
    """

    def __init__(self, channels: int, cond_channels: int, hidden: int = 128, norm: str = "batch"):
        super().__init__()
        self.norm = _norm(norm, channels)
        self.shared = nn.Sequential(nn.Conv2d(cond_channels, hidden, 3, padding=1), nn.ReLU(inplace=True))
        self.gamma = nn.Conv2d(hidden, channels, 3, padding=1)
        self.beta = nn.Conv2d(hidden, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.shared(cond)
        return self.norm(x) * (1.0 + self.gamma(h)) + self.beta(h)


class SPADEResBlock(nn.Module):
    """SPADE ResBlk (Park et al. 2019, Fig. 4 right / appendix A): two SPADE → LeakyReLU → conv 3×3
    layers, and a learned SPADE → conv 1×1 shortcut when the width changes.

    Forward:
        ``x (B, c_in, H, W)``, ``cond (B, cond_channels, H, W)`` → ``(B, c_out, H, W)``.
    """

    def __init__(self, c_in: int, c_out: int, cond_channels: int, hidden: int = 128, norm: str = "batch", spectral: bool = True):
        super().__init__()
        c_mid = min(c_in, c_out)
        self.norm0 = SPADE(c_in, cond_channels, hidden, norm)
        self.conv0 = _sn(nn.Conv2d(c_in, c_mid, 3, padding=1), spectral)
        self.norm1 = SPADE(c_mid, cond_channels, hidden, norm)
        self.conv1 = _sn(nn.Conv2d(c_mid, c_out, 3, padding=1), spectral)
        self.learned_shortcut = c_in != c_out
        if self.learned_shortcut:
            self.norm_s = SPADE(c_in, cond_channels, hidden, norm)
            self.conv_s = _sn(nn.Conv2d(c_in, c_out, 1, bias=False), spectral)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        s = self.conv_s(self.norm_s(x, cond)) if self.learned_shortcut else x
        h = self.conv0(F.leaky_relu(self.norm0(x, cond), 0.2))
        h = self.conv1(F.leaky_relu(self.norm1(h, cond), 0.2))
        return s + h


@dataclass
class SpadeGeneratorConfig:
    """Settings of :class:`SpadeGenerator` (config ``model`` keys of the OneShotA2V recipe).

    Attributes:
        image_size: output side S in pixels (a power of two times ``seed_size``).
        seed_size: side s0 of the seed map made from the content code (SPADE: 4 at 256² … here any).
        base_channels: width at full resolution; widths double per level towards the seed, capped
            at ``max_channels`` (SPADE: nf = 64, 16·nf at the seed).
        max_channels: width cap.
        spade_hidden: width of each SPADE's shared conv (128).
        norm: ``"batch"`` | ``"instance"``.
        spectral: spectral norm on the generator's convolutions.
        audio_in_spade: broadcast the content code into every SPADE's conditioning map (a2v).
        audio_spade_channels: channels of that broadcast code (a linear projection of it).
    """

    image_size: int = 256
    seed_size: int = 4
    base_channels: int = 64
    max_channels: int = 1024
    spade_hidden: int = 128
    norm: str = "batch"
    spectral: bool = True
    audio_in_spade: bool = True
    audio_spade_channels: int = 16

    def __post_init__(self):
        if self.norm not in NORMS:
            raise ValueError(f"model.norm must be one of {NORMS}, got {self.norm!r}")
        ratio = self.image_size / self.seed_size
        if ratio < 1 or ratio != 2 ** round(math.log2(ratio)):
            raise ValueError(f"model.image_size {self.image_size} must be seed_size {self.seed_size} times a power of two")

    @property
    def n_up(self) -> int:
        """Upsamplings from the seed to the image (log2(S / s0))."""
        return int(round(math.log2(self.image_size / self.seed_size)))

    def widths(self) -> list[int]:
        """Channels of the ``n_up + 1`` levels, seed first."""
        return [min(self.max_channels, self.base_channels * 2 ** (self.n_up - i)) for i in range(self.n_up + 1)]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None, section: str = "model") -> "SpadeGeneratorConfig":
        return dataclass_from_dict(cls, d, section)


class SpadeGenerator(nn.Module):
    """Frames from a reference face and per-frame content codes (see the module docstring).

    Args:
        cfg: :class:`SpadeGeneratorConfig`.
        content_dim: D of the content code (the content encoder's ``out_dim``).

    Forward:
        ``reference (B, 3, S, S)`` float32 in [-1, 1], ``content (B, D)`` float32 →
        ``(B, 3, S, S)`` float32 in [-1, 1].

    Raises:
        ValueError: (forward) a reference that is not ``(B, 3, S, S)`` or a batch mismatch.
    """

    def __init__(self, cfg: SpadeGeneratorConfig, content_dim: int):
        super().__init__()
        self.cfg, self.content_dim = cfg, int(content_dim)
        w = cfg.widths()
        self.seed = nn.Linear(self.content_dim, w[0] * cfg.seed_size ** 2)
        a = cfg.audio_spade_channels if cfg.audio_in_spade else 0
        self.audio_map = nn.Linear(self.content_dim, a) if a else None
        cond = 3 + a
        self.blocks = nn.ModuleList([SPADEResBlock(w[0], w[0], cond, cfg.spade_hidden, cfg.norm, cfg.spectral)])
        for i in range(cfg.n_up):
            self.blocks.append(SPADEResBlock(w[i], w[i + 1], cond, cfg.spade_hidden, cfg.norm, cfg.spectral))
        self.to_rgb = nn.Conv2d(w[-1], 3, 3, padding=1)

    def forward(self, reference: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        S = cfg.image_size
        if reference.ndim != 4 or reference.shape[1:] != (3, S, S):
            raise ValueError(f"reference must be (B, 3, {S}, {S}), got {tuple(reference.shape)}")
        if content.ndim != 2 or content.shape[0] != reference.shape[0] or content.shape[1] != self.content_dim:
            raise ValueError(f"content must be (B={reference.shape[0]}, {self.content_dim}), got {tuple(content.shape)}")
        x = self.seed(content).view(content.shape[0], -1, cfg.seed_size, cfg.seed_size)
        code = self.audio_map(content)[:, :, None, None] if self.audio_map is not None else None
        size = cfg.seed_size
        for i, block in enumerate(self.blocks):
            if i > 0:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
                size *= 2
            cond = resize_map(reference, size)
            if code is not None:
                cond = torch.cat([cond, code.expand(-1, -1, size, size)], dim=1)
            x = block(x, cond)
        return torch.tanh(self.to_rgb(F.leaky_relu(x, 0.2)))


__all__ = ["SPADE", "SPADEResBlock", "SpadeGenerator", "SpadeGeneratorConfig", "resize_map"]
