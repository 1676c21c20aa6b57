"""Multi-scale temporal discriminator of OneShotA2V (§3.2.2; after LumièreNet / vid2vid).

It judges windows of ``L`` consecutive frames, so that the generator's frame-by-frame output moves
smoothly: the window's frames are stacked on the channel axis, ``(B, L, 3, S, S) → (B, 3L, S, S)``,
and a pix2pixHD multi-scale PatchGAN (:class:`a2v.models.discriminators.PatchDiscriminator`, no
CAM) looks at it at full, /2 and /4 resolution. The loss sums over the windows of a clip (§3.2.2:
``Σ_{i=t-L}^{t}``), i.e. a clip of any length ``T ≥ L`` is cut into windows
(:func:`sliding_windows`) and each window is one sample.

a2v choices: "multi-scale" is read as spatial scales (the frame discriminator's sense, §3.2.1);
the window is not conditioned on the reference face (vid2vid's temporal D is not); windows are
taken with a stride (``stride`` frames, default ``L // 2``) rather than at every frame.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from a2v.models.discriminators import PatchDiscriminator, pyramid
from a2v.settings import dataclass_from_dict


@dataclass
class TemporalDiscriminatorConfig:
    """``model.temporal_discriminator`` settings.

    Attributes:
        window: L, frames per judged window (the paper leaves L open; a2v default 5).
        stride: frames between window starts when a clip is cut (:func:`sliding_windows`);
            ``None`` → ``max(1, L // 2)``.
        n_scales, base_channels, n_layers, max_channels: the PatchGAN pyramid (3, 64, 3, 512).
    """

    window: int = 5
    stride: int | None = None
    n_scales: int = 3
    base_channels: int = 64
    n_layers: int = 3
    max_channels: int = 512

    def __post_init__(self):
        if self.window < 2:
            raise ValueError(f"model.temporal_discriminator.window must be >= 2 frames, got {self.window}")
        if self.stride is not None and self.stride < 1:
            raise ValueError(f"model.temporal_discriminator.stride must be >= 1, got {self.stride}")
        if self.n_scales < 1:
            raise ValueError(f"model.temporal_discriminator.n_scales must be >= 1, got {self.n_scales}")

    @property
    def step(self) -> int:
        return self.stride if self.stride is not None else max(1, self.window // 2)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> "TemporalDiscriminatorConfig":
        return dataclass_from_dict(cls, d, "model.temporal_discriminator")


def sliding_windows(video: torch.Tensor, window: int, stride: int) -> torch.Tensor:
    """Cut clips into windows of ``window`` consecutive frames.

    Args:
        video: ``(B, T, C, H, W)`` (or ``(T, C, H, W)`` for one clip), ``T >= window``.
        window, stride: frames per window and between window starts; the last window ends at
            frame ``T - 1`` (it may overlap its neighbour by more than ``window - stride``).

    Returns:
        ``(B · N, window, C, H, W)`` with ``N = ceil((T - window) / stride) + 1`` windows per clip,
        clip-major.

    Raises:
        ValueError: ``T < window`` or a tensor that is not 4-D/5-D.
    """
    if video.ndim == 4:
        video = video.unsqueeze(0)
    if video.ndim != 5:
        raise ValueError(f"video must be (B, T, C, H, W) or (T, C, H, W), got {tuple(video.shape)}")
    T = video.shape[1]
    if T < window:
        raise ValueError(f"clips of {T} frames are shorter than the temporal window of {window}")
    starts = list(range(0, T - window + 1, stride))
    if starts[-1] != T - window:
        starts.append(T - window)
    return torch.stack([video[:, s:s + window] for s in starts], dim=1).flatten(0, 1)


class TemporalDiscriminator(nn.Module):
    """Multi-scale PatchGAN over channel-stacked windows of L frames (see the module docstring).

    Forward:
        ``windows (B, L, 3, S, S)`` float in [-1, 1] → list (one per scale, finest first) of
        :class:`~a2v.models.discriminators.PatchDiscriminator` output dicts (``features``,
        ``logits (B, 1, h, w)``).

    Raises:
        ValueError: (forward) a window of another length than ``cfg.window``.
    """

    def __init__(self, cfg: TemporalDiscriminatorConfig):
        super().__init__()
        self.cfg = cfg
        self.scales = nn.ModuleList(
            PatchDiscriminator(3 * cfg.window, cfg.base_channels, cfg.n_layers, cfg.max_channels, cam=False)
            for _ in range(cfg.n_scales)
        )

    def forward(self, windows: torch.Tensor) -> list[dict]:
        if windows.ndim != 5 or windows.shape[1] != self.cfg.window or windows.shape[2] != 3:
            raise ValueError(f"windows must be (B, {self.cfg.window}, 3, S, S), got {tuple(windows.shape)}")
        return pyramid(self.scales, windows.flatten(1, 2))


__all__ = ["TemporalDiscriminator", "TemporalDiscriminatorConfig", "sliding_windows"]
