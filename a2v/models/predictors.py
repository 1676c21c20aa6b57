"""Motion predictors of MAN: optical flow (U-Net) and keypoint heatmaps (hourglass).

Paper: MAN §3.0.1 ("Optical Flow Predictor", "KeyPoint Heatmap Predictor"), supp. Figs. 3–4.
Both read the previous 5 frames and the 256-dim mel vector of the current frame and are trained
jointly with the generator by MSE — against Farnebäck flow, or against keypoint heatmaps.

a2v's reading of "previous 5 frames along with 256 audio mel-spectrogram features which are
concatenated along the channel axis": the 5 RGB frames are stacked into 15 channels; the mel
vector goes through a linear layer to ``mel_channels`` values that are tiled over the image
plane and appended as extra channels. Normalisation is GroupNorm (independent of the batch, so
that autoregressive inference with batch 1 behaves as in training).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from a2v.settings import dataclass_from_dict


def _gn(channels: int) -> nn.GroupNorm:
    groups = 8 if channels % 8 == 0 else (4 if channels % 4 == 0 else 1)
    return nn.GroupNorm(groups, channels)


def _conv_block(in_ch: int, out_ch: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, stride, 1), _gn(out_ch), nn.LeakyReLU(0.2, inplace=True))


class _MelTiler(nn.Module):
    """``(B, mel_dim)`` → ``(B, mel_channels, H, W)`` by a linear layer and spatial tiling."""

    def __init__(self, mel_dim: int, mel_channels: int):
        super().__init__()
        self.mel_dim = mel_dim
        self.fc = nn.Linear(mel_dim, mel_channels)

    def forward(self, mel: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if mel.ndim != 2 or mel.shape[1] != self.mel_dim:
            raise ValueError(f"mel: expected (B, {self.mel_dim}), got {tuple(mel.shape)}")
        h = self.fc(mel)
        return h[:, :, None, None].expand(-1, -1, *size)


def _check_frames(prev_frames: torch.Tensor, n_prev: int, size: int | None) -> None:
    if prev_frames.ndim != 4 or prev_frames.shape[1] != 3 * n_prev:
        raise ValueError(f"prev_frames: expected (B, {3 * n_prev}, S, S), got {tuple(prev_frames.shape)}")
    if size is not None and tuple(prev_frames.shape[-2:]) != (size, size):
        raise ValueError(f"prev_frames: expected spatial size {size}x{size}, got {tuple(prev_frames.shape[-2:])}")


class FlowPredictor(nn.Module):
    """U-Net that predicts the optical flow from frame t−1 to t (MAN supp. Fig. 3).

    Args:
        image_size: S.
        base_channels: width of the first U-Net level (doubles per level, capped at 8×).
        depth: number of stride-2 levels (the bottleneck is ``S / 2**depth``).
        mel_dim: mel features (256).
        mel_channels: tiled mel channels appended to the input.
        n_prev: previous frames read (5).
        flow_scale: pixels per output unit (the raw output is multiplied by it).

    Forward:
        ``prev_frames (B, 3·n_prev, S, S)`` float in [-1, 1] (oldest first, frame t−1 last),
        ``mel (B, 256)`` standardised → flow ``(B, 2, S, S)`` float in pixels (x, y).
    """

    def __init__(
        self,
        image_size: int,
        base_channels: int = 32,
        depth: int = 4,
        mel_dim: int = 256,
        mel_channels: int = 16,
        n_prev: int = 5,
        flow_scale: float = 1.0,
    ):
        super().__init__()
        if image_size % (2**depth):
            raise ValueError(f"image_size {image_size} must be divisible by 2**depth = {2**depth}")
        self.image_size = image_size
        self.n_prev = n_prev
        self.flow_scale = float(flow_scale)
        self.mel = _MelTiler(mel_dim, mel_channels)
        widths = [min(base_channels * 2**i, base_channels * 8) for i in range(depth + 1)]
        self.inc = _conv_block(3 * n_prev + mel_channels, widths[0])
        self.down = nn.ModuleList(_conv_block(widths[i], widths[i + 1], stride=2) for i in range(depth))
        self.mid = _conv_block(widths[-1], widths[-1])
        self.up = nn.ModuleList(_conv_block(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(depth)))
        self.out = nn.Conv2d(widths[0], 2, 3, padding=1)

    def forward(self, prev_frames: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        _check_frames(prev_frames, self.n_prev, self.image_size)
        size = (prev_frames.shape[-2], prev_frames.shape[-1])
        x = self.inc(torch.cat([prev_frames, self.mel(mel, size).to(prev_frames.dtype)], dim=1))
        skips = [x]
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        x = self.mid(skips.pop())
        for layer in self.up:
            skip = skips.pop()
            x = layer(torch.cat([F.interpolate(x, size=skip.shape[-2:], mode="nearest"), skip], dim=1))
        return self.out(x) * self.flow_scale


class _Hourglass(nn.Module):
    """Recursive hourglass (Newell et al. 2016): skip branch + pooled branch, summed after upsampling."""

    def __init__(self, depth: int, channels: int):
        super().__init__()
        self.skip = _conv_block(channels, channels)
        self.down = _conv_block(channels, channels, stride=2)
        self.inner = _Hourglass(depth - 1, channels) if depth > 1 else _conv_block(channels, channels)
        self.up = _conv_block(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.inner(self.down(x))
        return self.skip(x) + self.up(F.interpolate(low, size=x.shape[-2:], mode="nearest"))


class KeypointPredictor(nn.Module):
    """Hourglass that predicts 15 facial-keypoint heatmaps of the current frame (MAN supp. Fig. 4).

    The input frames are resized to ``heatmap_size`` (96) before the hourglass.

    Args:
        base_channels: hourglass width.
        depth: hourglass levels (96 → 48 → 24 → 12 for 3).
        n_keypoints: output heatmaps (15).
        heatmap_size: output side (96).
        mel_dim, mel_channels, n_prev: as for :class:`FlowPredictor`.

    Forward:
        ``prev_frames (B, 3·n_prev, S, S)`` float in [-1, 1], ``mel (B, 256)`` →
        heatmaps ``(B, 15, 96, 96)`` float in [0, 1] (sigmoid).
    """

    def __init__(
        self,
        base_channels: int = 32,
        depth: int = 3,
        n_keypoints: int = 15,
        heatmap_size: int = 96,
        mel_dim: int = 256,
        mel_channels: int = 16,
        n_prev: int = 5,
    ):
        super().__init__()
        self.n_prev = n_prev
        self.heatmap_size = heatmap_size
        self.mel = _MelTiler(mel_dim, mel_channels)
        self.inc = _conv_block(3 * n_prev + mel_channels, base_channels)
        self.hourglass = _Hourglass(depth, base_channels)
        self.out = nn.Conv2d(base_channels, n_keypoints, 1)

    def forward(self, prev_frames: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        _check_frames(prev_frames, self.n_prev, None)
        size = (self.heatmap_size, self.heatmap_size)
        frames = F.interpolate(prev_frames, size=size, mode="bilinear", align_corners=False, antialias=True)
        x = self.inc(torch.cat([frames, self.mel(mel, size).to(frames.dtype)], dim=1))
        return torch.sigmoid(self.out(self.hourglass(x)))


@dataclass
class PredictorConfig:
    """Configuration of the motion predictor (config key ``model.predictor``).

    Attributes:
        base_channels: predictor width (32).
        depth: U-Net levels (flow) / hourglass levels (keypoints); ``None`` → 4 / 3.
        mel_channels: tiled mel channels (16).
        n_prev: previous frames read (5, MAN §3.0.1).
    """

    base_channels: int = 32
    depth: int | None = None
    mel_channels: int = 16
    n_prev: int = 5

    @classmethod
    def from_dict(cls, d: dict | None) -> "PredictorConfig":
        """Build from a dict; unknown keys raise ``ValueError``."""
        return dataclass_from_dict(cls, d, "model.predictor")


def build_predictor(man_cfg, pred_cfg: PredictorConfig | None = None) -> nn.Module:
    """The predictor matching ``man_cfg.motion``: :class:`FlowPredictor` or :class:`KeypointPredictor`.

    Args:
        man_cfg: :class:`a2v.models.man.ManConfig` (image size, motion kind, mel size, flow scale).
        pred_cfg: :class:`PredictorConfig`; ``None`` → defaults.
    """
    pred_cfg = pred_cfg or PredictorConfig()
    if man_cfg.motion == "flow":
        return FlowPredictor(
            man_cfg.image_size,
            base_channels=pred_cfg.base_channels,
            depth=pred_cfg.depth if pred_cfg.depth is not None else 4,
            mel_dim=man_cfg.mel_dim,
            mel_channels=pred_cfg.mel_channels,
            n_prev=pred_cfg.n_prev,
            flow_scale=man_cfg.effective_flow_scale,
        )
    return KeypointPredictor(
        base_channels=pred_cfg.base_channels,
        depth=pred_cfg.depth if pred_cfg.depth is not None else 3,
        n_keypoints=man_cfg.n_keypoints,
        heatmap_size=man_cfg.heatmap_size,
        mel_dim=man_cfg.mel_dim,
        mel_channels=pred_cfg.mel_channels,
        n_prev=pred_cfg.n_prev,
    )
