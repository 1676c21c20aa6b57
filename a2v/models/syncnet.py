"""SyncNet: audio-visual synchronisation embeddings (Chung & Zisserman, "Out of time: automated lip
sync in the wild", ACCV 2016 workshops, §3) — the LSE-C/LSE-D judge (Prajwal et al., Wav2Lip, 2020,
§4.1) and the sync discriminator of OneShotA2V (§3.3).

Two streams map 0.2 s of speech and 0.2 s of video to one embedding space:

* **audio**: the MFCC window of a video frame, ``(B, 20, 13)`` (20 sub-frames at 100 Hz × 13
  coefficients — exactly the shard's ``mfcc``, :mod:`a2v.audio.features`), read as a 1-channel
  13 × 20 image by a 2-D conv net;
* **video**: the mouth region (:func:`a2v.face.mouth.mouth_crops`) of the 5 frames centred on
  that frame, stacked on the channel axis: ``(B, 15, H, W)``.

Each stream ends in an L2-normalised ``embed_dim`` vector; the distance is Euclidean. Trained with
the contrastive loss of Chung & Zisserman Eq. 1: ``y·d² + (1 − y)·max(margin − d, 0)²`` with
``y = 1`` for in-sync pairs and ``y = 0`` for audio shifted in time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from a2v.settings import dataclass_from_dict

N_FRAMES = 5
"""Video frames per window (0.2 s at 25 fps)."""


@dataclass
class SyncNetConfig:
    """SyncNet sizes.

    Attributes:
        mouth_width, mouth_height: mouth crop size in pixels.
        mfcc_shape: ``(sub-frames, coefficients)`` of the audio window, ``(20, 13)``.
        channels: conv widths of each stream (4 stages).
        embed_dim: embedding size.
    """

    mouth_width: int = 96
    mouth_height: int = 48
    mfcc_shape: tuple[int, int] = (20, 13)
    channels: tuple[int, int, int, int] = (64, 128, 256, 256)
    embed_dim: int = 256

    def __post_init__(self):
        self.mfcc_shape = tuple(int(v) for v in self.mfcc_shape)
        self.channels = tuple(int(c) for c in self.channels)
        if len(self.channels) != 4:
            raise ValueError(f"syncnet channels needs 4 widths, got {self.channels}")
        if min(self.mouth_width, self.mouth_height) < 16:
            raise ValueError(f"mouth crops must be at least 16 px a side, got {self.mouth_width}×{self.mouth_height}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mfcc_shape"], d["channels"] = list(self.mfcc_shape), list(self.channels)
        return d

    @classmethod
    def from_dict(cls, d: dict | None) -> "SyncNetConfig":
        """Build from a dict; unknown keys raise ``ValueError``."""
        return dataclass_from_dict(cls, d, "syncnet model")


def _stream(in_channels: int, channels: tuple[int, ...], embed_dim: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    c = in_channels
    for i, w in enumerate(channels):
        layers += [nn.Conv2d(c, w, 3, stride=1 if i == 0 else 2, padding=1), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
        c = w
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, embed_dim)]
    return nn.Sequential(*layers)


class SyncNet(nn.Module):
    """Audio and video streams into one embedding space (see the module docstring)."""

    def __init__(self, cfg: SyncNetConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or SyncNetConfig()
        self.audio = _stream(1, cfg.channels, cfg.embed_dim)
        self.video = _stream(3 * N_FRAMES, cfg.channels, cfg.embed_dim)

    def embed_audio(self, mfcc: torch.Tensor) -> torch.Tensor:
        """``(B, 20, 13)`` float MFCC windows → ``(B, embed_dim)`` unit vectors.

        Raises:
            ValueError: wrong shape.
        """
        if mfcc.ndim != 3 or tuple(mfcc.shape[1:]) != self.cfg.mfcc_shape:
            raise ValueError(f"SyncNet audio expects (B, {self.cfg.mfcc_shape[0]}, {self.cfg.mfcc_shape[1]}), got {tuple(mfcc.shape)}")
        return F.normalize(self.audio(mfcc.transpose(1, 2).unsqueeze(1)), dim=1)

    def embed_video(self, mouths: torch.Tensor) -> torch.Tensor:
        """``(B, 15, H, W)`` float in [-1, 1] (5 mouth crops, RGB, stacked) → ``(B, embed_dim)`` unit vectors.

        Raises:
            ValueError: wrong shape.
        """
        cfg = self.cfg
        if mouths.ndim != 4 or tuple(mouths.shape[1:]) != (3 * N_FRAMES, cfg.mouth_height, cfg.mouth_width):
            raise ValueError(f"SyncNet video expects (B, {3 * N_FRAMES}, {cfg.mouth_height}, {cfg.mouth_width}), got {tuple(mouths.shape)}")
        return F.normalize(self.video(mouths), dim=1)

    def forward(self, mfcc: torch.Tensor, mouths: torch.Tensor) -> torch.Tensor:
        """Euclidean distance ``(B,)`` between each audio window and video window (0 … 2)."""
        return (self.embed_audio(mfcc) - self.embed_video(mouths)).norm(dim=1)


def contrastive_loss(distance: torch.Tensor, in_sync: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Chung & Zisserman 2016, Eq. 1: mean of ``y·d² + (1 − y)·max(margin − d, 0)²`` (scalar float32).

    Args:
        distance: ``(B,)`` distances; in_sync: ``(B,)`` 1 for in-sync pairs, 0 for shifted ones.
    """
    y = in_sync.float()
    d = distance.float()
    return (y * d.pow(2) + (1 - y) * F.relu(margin - d).pow(2)).mean()
