"""1-D spatial pyramid pooling over time: a sequence of any length → one fixed-size vector.

Jain et al., *Speech Driven Video Generation from Facial Images*, §III.6 ("Sequence
Discriminator"): the recurrent sequence discriminator of their reference [2] (Vougioukas et al.)
ends in fully connected layers and so "only works on fixed length sequences"; Jain et al. put a
"customized version of Spatial Pyramid Pooling [9]" that "works on 1-Dimensional vector[s]" between
the recurrent network and the fully connected layers. He et al.'s SPP (ECCV 2014, §2.3) pools a
feature map into a pyramid of ``n × n`` bins; here the map is a sequence of ``T`` feature vectors
and the bins are ``n`` spans of time per pyramid level.

a2v: (the paper gives none of these) levels ``(1, 2, 4)``; max pooling (He et al.'s
choice); bins are PyTorch's adaptive-pooling spans (bin ``i`` of ``n`` covers frames
``floor(i·T/n) … ceil((i+1)·T/n) − 1``), so a sequence shorter than the finest level (``T < 4``)
still pools (its frames repeat over bins) instead of failing as a fixed window/stride would.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

POOLS = ("max", "avg")


class TemporalPyramidPool(nn.Module):
    """1-D spatial pyramid pooling over the time axis (Jain et al. §III.6, after He et al. 2014).

    Args:
        levels: bins per pyramid level, each >= 1 (a2v default ``(1, 2, 4)``: 7 bins).
        mode: ``"max"`` (He et al.) or ``"avg"``.

    Forward:
        ``x (B, T, C)`` float, any ``T >= 1`` → ``(B, C · sum(levels))`` of the same dtype: for
        each level ``n`` (in the given order) the ``n`` bins' pooled ``C``-vectors, bin-major
        (``[bin 0 channels…, bin 1 channels…]``). The size does not depend on ``T``.

    Raises:
        ValueError: empty or non-positive ``levels``, an unknown ``mode`` (at construction);
            an input that is not 3-D or has ``T = 0`` (at forward).
    """

    def __init__(self, levels: Sequence[int] = (1, 2, 4), mode: str = "max"):
        super().__init__()
        levels = tuple(int(n) for n in levels)
        if not levels or min(levels) < 1:
            raise ValueError(f"pyramid levels must be a non-empty list of integers >= 1, got {levels}")
        if mode not in POOLS:
            raise ValueError(f"pyramid pooling mode must be one of {POOLS}, got {mode!r}")
        self.levels, self.mode = levels, mode

    @property
    def bins(self) -> int:
        """Bins over all levels (the output has ``C · bins`` values)."""
        return sum(self.levels)

    def out_features(self, channels: int) -> int:
        """Output size for ``channels`` input features."""
        return int(channels) * self.bins

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or x.shape[1] < 1:
            raise ValueError(f"TemporalPyramidPool expects (B, T >= 1, C), got {tuple(x.shape)}")
        seq = x.transpose(1, 2)  # (B, C, T)
        pool = F.adaptive_max_pool1d if self.mode == "max" else F.adaptive_avg_pool1d
        return torch.cat([pool(seq, n).transpose(1, 2).flatten(1) for n in self.levels], dim=1)

    def extra_repr(self) -> str:
        return f"levels={self.levels}, mode={self.mode}"


__all__ = ["POOLS", "TemporalPyramidPool"]
