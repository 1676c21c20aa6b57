"""Per-coefficient standardisation of the shard's MFCC and mel features, fitted on training clips.

Models, SyncNet and generation share it: a checkpoint stores the normaliser its network was
trained with (:meth:`FeatureNormalizer.state_dict`), and generation applies that one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from a2v.features.shard import ShardReader


class FeatureNormalizer:
    """Per-coefficient standardisation of MFCC and mel features, fitted on the training clips.

    ``mfcc`` is standardised per coefficient (13 means/stds over all sub-frames and frames),
    ``mel`` per band (256). Stds are floored at ``1e-3``.

    Args:
        mfcc_mean, mfcc_std: ``(13,)``.
        mel_mean, mel_std: ``(256,)``.
    """

    def __init__(self, mfcc_mean, mfcc_std, mel_mean, mel_std):
        self.mfcc_mean = np.asarray(mfcc_mean, np.float32)
        self.mfcc_std = np.maximum(np.asarray(mfcc_std, np.float32), 1e-3)
        self.mel_mean = np.asarray(mel_mean, np.float32)
        self.mel_std = np.maximum(np.asarray(mel_std, np.float32), 1e-3)

    @classmethod
    def fit(cls, mfccs: Iterable[np.ndarray], mels: Iterable[np.ndarray]) -> "FeatureNormalizer":
        """Fit on ``(T, 20, 13)`` MFCC and ``(T, 256)`` mel arrays (streamed; float64 sums)."""
        stats = []
        for arrays in (mfccs, mels):
            n, total, total_sq = 0, 0.0, 0.0
            for a in arrays:
                a = np.asarray(a, np.float64).reshape(-1, np.shape(a)[-1])
                n += a.shape[0]
                total = total + a.sum(0)
                total_sq = total_sq + (a * a).sum(0)
            if n == 0:
                raise ValueError("FeatureNormalizer.fit needs at least one frame of MFCC and of mel")
            mean = total / n
            stats += [mean, np.sqrt(np.maximum(total_sq / n - mean * mean, 0.0))]
        return cls(*stats)

    FEATURES = ("mfcc", "mel")
    """The shard features it standardises."""

    def apply(self, name: str, x):
        """Feature ``name`` standardised if it is one of :attr:`FEATURES`, else ``x`` unchanged."""
        return getattr(self, name)(x) if name in self.FEATURES else x

    def mfcc(self, x):
        """Standardise MFCCs ``(..., 13)`` (numpy or torch)."""
        return self._apply(x, self.mfcc_mean, self.mfcc_std)

    def mel(self, x):
        """Standardise mel vectors ``(..., 256)`` (numpy or torch)."""
        return self._apply(x, self.mel_mean, self.mel_std)

    @staticmethod
    def _apply(x, mean, std):
        if isinstance(x, torch.Tensor):
            return (x - torch.as_tensor(mean, device=x.device, dtype=x.dtype)) / torch.as_tensor(std, device=x.device, dtype=x.dtype)
        return ((np.asarray(x, np.float32) - mean) / std).astype(np.float32)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors only (loadable with ``torch.load(weights_only=True)``)."""
        return {k: torch.from_numpy(getattr(self, k).copy()) for k in ("mfcc_mean", "mfcc_std", "mel_mean", "mel_std")}

    @classmethod
    def from_state_dict(cls, state: dict) -> "FeatureNormalizer":
        """Inverse of :meth:`state_dict`."""
        return cls(*(np.asarray(state[k], np.float32) for k in ("mfcc_mean", "mfcc_std", "mel_mean", "mel_std")))


def fit_normalizer(clips: Sequence[tuple[str | Path, str]]) -> FeatureNormalizer:
    """Fit a :class:`FeatureNormalizer` on the ``mfcc`` and ``mel`` of ``(shard path, clip id)`` pairs."""
    groups: dict[str, list[str]] = {}
    for path, clip_id in clips:
        groups.setdefault(str(path), []).append(clip_id)

    def stream(name: str) -> Iterator[np.ndarray]:
        for path, ids in groups.items():
            shard = ShardReader(path)
            try:
                for clip_id in ids:
                    yield shard.read(clip_id, name)
            finally:
                shard.close()

    return FeatureNormalizer.fit(stream("mfcc"), stream("mel"))


def feature_mean_std(clips, name: str, floor: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Per-coefficient mean and std (floored at ``floor``) of shard feature ``name`` over every frame
    and sub-frame of ``(shard path, clip id)`` pairs (each shard opened once).

    Returns:
        ``(mean (C,), std (C,))`` float64, C = the feature's last axis.

    Raises:
        ValueError: no frame in ``clips``.
    """
    from a2v.features.shard import ShardReader

    n, total, total_sq = 0, 0.0, 0.0
    groups: dict[str, list[str]] = {}
    for path, clip_id in clips:
        groups.setdefault(str(path), []).append(clip_id)
    for path, ids in groups.items():
        with ShardReader(path) as shard:
            for clip_id in ids:
                a = np.asarray(shard.read(clip_id, name), np.float64)
                a = a.reshape(-1, a.shape[-1])
                n += len(a)
                total, total_sq = total + a.sum(0), total_sq + (a * a).sum(0)
    if n == 0:
        raise ValueError(f"no {name} frames in the training clips")
    mean = total / n
    return mean, np.maximum(np.sqrt(np.maximum(total_sq / n - mean * mean, 0.0)), floor)
