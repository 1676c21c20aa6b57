"""LipNet lip-reader (Assael et al., "LipNet: End-to-End Sentence-level Lipreading", 2016, §3 and
Table 1) — the WER judge of MAN supp. §2.2 and OneShotA2V §6.2.

Architecture (LipNet Table 1; widths configurable for CPU runs):

=======  ===========================================================================
layer    operation
=======  ===========================================================================
STCNN1   Conv3d(3 → 32, k (3, 5, 5), stride (1, 2, 2), pad (1, 2, 2)) → [BatchNorm] → ReLU
         → Dropout → MaxPool3d((1, 2, 2))
STCNN2   Conv3d(32 → 64, k (3, 5, 5), pad (1, 2, 2)) → [BatchNorm] → ReLU → Dropout → MaxPool3d((1, 2, 2))
STCNN3   Conv3d(64 → 96, k (3, 3, 3), pad (1, 1, 1)) → [BatchNorm] → ReLU → Dropout → MaxPool3d((1, 2, 2))
Bi-GRU   2 layers, 256 units each way, over the T frames
Linear   512 → 28 (CTC blank, space, a–z), log-softmax; CTC loss (Graves et al. 2006)
=======  ===========================================================================

BatchNorm after each convolution is not in the paper but in the widely used Keras LipNet
(rizkiarm/LipNet, ``model2.py``); on 239 GRID clips of one speaker it is what lets CTC leave the
blank/mode-sentence plateau within a few thousand CPU steps (``batch_norm: false`` gives the
paper's layers).

Input: mouth crops ``(B, 3, T, H, W)`` float in [-1, 1] (H × W = 50 × 100 in LipNet; see
:mod:`a2v.face.mouth`). Output: ``(T, B, 28)`` float log-probabilities (CTC's time-major layout).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from a2v.settings import dataclass_from_dict

BLANK = 0
ALPHABET = " abcdefghijklmnopqrstuvwxyz"
"""Output symbols after the CTC blank (index 0): space, then a–z (GRID's words are lowercase letters)."""
N_CLASSES = 1 + len(ALPHABET)
DECODERS = ("grid_grammar", "greedy")

GRID_VOCABULARY = {
    "command": ("bin", "lay", "place", "set"),
    "color": ("blue", "green", "red", "white"),
    "preposition": ("at", "by", "in", "with"),
    "letter": tuple("abcdefghijklmnopqrstuvxyz"),  # no "w"
    "digit": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
    "adverb": ("again", "now", "please", "soon"),
}
"""GRID's sentence grammar (Cooke et al. 2006): command color preposition letter digit adverb."""


def encode_text(text: str) -> list[int]:
    """Sentence → class indices (1…27). Lowercased; runs of whitespace become one space.

    Raises:
        ValueError: a character outside space and a–z.
    """
    norm = " ".join(text.lower().split())
    bad = sorted({c for c in norm if c not in ALPHABET})
    if bad:
        raise ValueError(f"text {text!r} has characters the lip-reader cannot spell: {bad}")
    return [1 + ALPHABET.index(c) for c in norm]


@dataclass
class LipNetConfig:
    """LipNet hyper-parameters (defaults: LipNet Table 1).

    Attributes:
        mouth_width, mouth_height: input crop size in pixels (100 × 50).
        channels: widths of the three STCNN blocks.
        gru_hidden: units per direction of each Bi-GRU layer.
        gru_layers: Bi-GRU layers.
        dropout: spatial dropout after each STCNN block.
        batch_norm: BatchNorm3d after each STCNN convolution (see the module docstring).
        decoder: ``"grid_grammar"`` (best CTC path through GRID's sentence grammar,
            :class:`a2v.judges.ctc.GrammarDecoder`) or ``"greedy"`` (best path, any spelling).
    """

    mouth_width: int = 100
    mouth_height: int = 50
    channels: tuple[int, int, int] = (32, 64, 96)
    gru_hidden: int = 256
    gru_layers: int = 2
    dropout: float = 0.5
    batch_norm: bool = True
    decoder: str = "grid_grammar"

    def __post_init__(self):
        if self.decoder not in DECODERS:
            raise ValueError(f"lipreader decoder must be one of {DECODERS}, got {self.decoder!r}")
        self.channels = tuple(int(c) for c in self.channels)
        if len(self.channels) != 3:
            raise ValueError(f"lipreader channels needs 3 widths, got {self.channels}")
        if min(self.mouth_width, self.mouth_height) < 16:
            raise ValueError(f"mouth crops must be at least 16 px a side, got {self.mouth_width}×{self.mouth_height}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d

    @classmethod
    def from_dict(cls, d: dict | None) -> "LipNetConfig":
        """Build from a dict; unknown keys raise ``ValueError``."""
        return dataclass_from_dict(cls, d, "lipreader model")


class LipNet(nn.Module):
    """LipNet (see the module docstring).

    Forward:
        ``x (B, 3, T, H, W)`` float in [-1, 1] with ``H, W`` = the configured mouth size →
        ``(T, B, 28)`` float32 CTC log-probabilities.

    Raises:
        ValueError: input of the wrong rank or size.
    """

    def __init__(self, cfg: LipNetConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or LipNetConfig()
        c1, c2, c3 = cfg.channels
        convs = (
            nn.Conv3d(3, c1, (3, 5, 5), stride=(1, 2, 2), padding=(1, 2, 2)),
            nn.Conv3d(c1, c2, (3, 5, 5), padding=(1, 2, 2)),
            nn.Conv3d(c2, c3, (3, 3, 3), padding=(1, 1, 1)),
        )
        layers: list[nn.Module] = []
        for conv in convs:
            layers.append(conv)
            if cfg.batch_norm:
                layers.append(nn.BatchNorm3d(conv.out_channels))
            layers += [nn.ReLU(inplace=True), nn.Dropout3d(cfg.dropout), nn.MaxPool3d((1, 2, 2), (1, 2, 2))]
        self.stcnn = nn.Sequential(*layers)
        # spatial size after the stride-2 conv (ceil) and three 2×2 pools (floor)
        h, w = -(-cfg.mouth_height // 2) // 8, -(-cfg.mouth_width // 2) // 8
        self.feat_dim = c3 * h * w
        self.gru = nn.GRU(self.feat_dim, cfg.gru_hidden, num_layers=cfg.gru_layers, batch_first=False, bidirectional=True, dropout=0.0)
        self.out = nn.Linear(2 * cfg.gru_hidden, N_CLASSES)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """See the class docstring; ``lengths (B,)`` int64 (CPU) are the valid frames of a padded
        batch: the Bi-GRU then skips the padding (outputs past a clip's length are not meaningful)."""
        cfg = self.cfg
        if x.ndim != 5 or x.shape[1] != 3 or tuple(x.shape[-2:]) != (cfg.mouth_height, cfg.mouth_width):
            raise ValueError(f"LipNet expects (B, 3, T, {cfg.mouth_height}, {cfg.mouth_width}), got {tuple(x.shape)}")
        h = self.stcnn(x)  # (B, C, T, h, w)
        b, c, t = h.shape[:3]
        h = h.permute(2, 0, 1, 3, 4).reshape(t, b, -1)  # (T, B, C·h·w)
        with torch.autocast(device_type=x.device.type, enabled=False):
            if lengths is None:
                h, _ = self.gru(h.float())
            else:
                packed = nn.utils.rnn.pack_padded_sequence(h.float(), lengths.cpu(), enforce_sorted=False)
                h, _ = nn.utils.rnn.pad_packed_sequence(self.gru(packed)[0], total_length=t)
        return F.log_softmax(self.out(h).float(), dim=-1)
