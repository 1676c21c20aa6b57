"""Training samples from HDF5 feature shards, feature standardisation, and step-indexed batch sampling.

A sample is one video frame ``t`` of one clip (schema version 1 of
``results/features/{dataset}/{speaker}.h5``; see :func:`open_shard`):

=================  ==================  =========  ==========================================
key                shape               dtype      meaning
=================  ==================  =========  ==========================================
``reference``      (3, S, S)           float32    identity frame of the same clip, RGB [-1, 1]
                                                  (a random frame, or frame 0 for "first")
``target``         (3, S, S)           float32    frame t, RGB [-1, 1]
``prev_frames``    (15, S, S)          float32    frames t−5 … t−1 (oldest first; indices
                                                  clamped at 0), RGB [-1, 1]
``flow``           (2, S, S)           float32    Farnebäck flow t−1 → t, pixels of the S crop
``heatmaps``       (15, 96, 96)        float32    keypoint heatmaps [0, 1] (``motion="keypoints"``)
``mfcc``           (20, 13)            float32    standardised MFCC window of frame t
``mel``            (256,)              float32    standardised log-mel vector of frame t
``f0_bin``         ()                  int64      pitch bin 0..255 (0 = unvoiced)
``energy_bin``     ()                  int64      energy bin 0..255
``clip``, ``t``    ()                  int64      clip index in the dataset, frame index
=================  ==================  =========  ==========================================

When the model's ``image_size`` differs from the shard's ``crop_size``, frames are resized with
area averaging (cv2 ``INTER_AREA``) and flow is resized and multiplied by
``image_size / crop_size`` (flow is in pixels).

Sampling is **step-indexed**: :class:`StepBatchSampler` derives the batch of step ``k`` from
``(seed, k)`` alone (epoch-wise permutations), so a run resumed at step ``k`` sees exactly the
batches an uninterrupted run would, with any number of DataLoader workers.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from a2v.features.shard import ShardReader, heatmaps_to_float
from a2v.features.windows import frames_to_tensor

REFERENCES = ("random", "first")
N_PREV = 5


# --------------------------------------------------------------------------------- shard access
def open_shard(path: str | Path) -> ShardReader:
    """Open a feature shard for reading (:class:`a2v.features.shard.ShardReader`).

    Raises:
        FileNotFoundError: no such file.
        ShardSchemaError: the shard has another ``schema_version``.
    """
    return ShardReader(path)


# --------------------------------------------------------------------------------- normaliser
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
    groups = _group_by_shard(clips)

    def stream(name: str) -> Iterator[np.ndarray]:
        for path, ids in groups.items():
            shard = open_shard(path)
            try:
                for clip_id in ids:
                    yield shard.read(clip_id, name)
            finally:
                shard.close()

    return FeatureNormalizer.fit(stream("mfcc"), stream("mel"))


def count_frames(clips: Sequence[tuple[str | Path, str]]) -> int:
    """Total number of frames (training samples) of ``(shard path, clip id)`` pairs, read from shapes only.

    Raises:
        KeyError: a clip not in its shard.
    """
    total = 0
    for path, ids in _group_by_shard(clips).items():
        shard = open_shard(path)
        try:
            for clip_id in ids:
                if clip_id not in shard.clip_ids:
                    raise KeyError(f"{path}: no clip {clip_id!r}")
                total += int(shard.shape(clip_id, "frames")[0])
        finally:
            shard.close()
    return total


def _group_by_shard(clips: Sequence[tuple[str | Path, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for path, clip_id in clips:
        out.setdefault(str(path), []).append(clip_id)
    return out


# --------------------------------------------------------------------------------- dataset
def _resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    import cv2

    if frames.shape[1] == size and frames.shape[2] == size:
        return frames
    interp = cv2.INTER_AREA if frames.shape[1] > size else cv2.INTER_LINEAR
    return np.stack([cv2.resize(f, (size, size), interpolation=interp) for f in frames])


def _resize_flow(flow: np.ndarray, size: int) -> np.ndarray:
    """``(T, 2, s, s)`` pixels → ``(T, 2, size, size)`` pixels (vectors scaled by size / s)."""
    import cv2

    s = flow.shape[-1]
    if s == size:
        return flow
    interp = cv2.INTER_AREA if s > size else cv2.INTER_LINEAR
    f = flow.astype(np.float32).transpose(0, 2, 3, 1)  # (T, s, s, 2)
    out = np.stack([cv2.resize(x, (size, size), interpolation=interp) for x in f]) * (size / s)
    return out.transpose(0, 3, 1, 2).astype(flow.dtype)


class FrameDataset(Dataset):
    """Per-frame training samples over ``(shard path, clip id)`` pairs (see the module docstring).

    Args:
        clips: ``(shard path, clip id)`` pairs.
        normalizer: MFCC/mel standardisation.
        image_size: S of the model (frames and flow are resized when the shard's differs).
        motion: ``"flow"`` or ``"keypoints"`` (whether ``heatmaps`` are read).
        reference: ``"random"`` (a random frame of the same clip, drawn per sample) or
            ``"first"`` (frame 0).
        cache: keep every clip's arrays in memory (read once, at construction).

    Items:
        ``dataset[(i, draw)]``: sample ``i`` (see :meth:`locate`); the non-negative int ``draw``
        picks the reference frame ``draw % T`` when ``reference="random"``.
        ``dataset[i]``: the same with ``draw`` taken from torch's global generator.
    """

    def __init__(
        self,
        clips: Sequence[tuple[str | Path, str]],
        normalizer: FeatureNormalizer,
        image_size: int,
        motion: str = "flow",
        reference: str = "random",
        cache: bool = True,
    ):
        if reference not in REFERENCES:
            raise ValueError(f"reference must be one of {REFERENCES}, got {reference!r}")
        if motion not in ("flow", "keypoints"):
            raise ValueError(f"motion must be 'flow' or 'keypoints', got {motion!r}")
        if not clips:
            raise ValueError("FrameDataset needs at least one clip")
        self.clips = [(str(p), c) for p, c in clips]
        self.normalizer = normalizer
        self.image_size = int(image_size)
        self.motion = motion
        self.reference = reference
        self.cache = cache
        self._shards: dict[str, ShardReader] = {}
        self._pid = os.getpid()
        lengths = []
        self._crop: list[int] = []
        for path, clip_id in self.clips:
            shard = self._shard(path)
            if clip_id not in shard.clip_ids:
                raise KeyError(f"{path}: no clip {clip_id!r}")
            lengths.append(shard.shape(clip_id, "frames")[0])
            self._crop.append(int(shard.shape(clip_id, "frames")[1]))
        self.lengths = np.asarray(lengths, np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])
        self._cached: list[dict[str, np.ndarray]] | None = None
        if cache:
            self._cached = [self._load_clip(i) for i in range(len(self.clips))]
            self._close_shards()

    # -- shard handles are per process (h5py handles must not cross fork)
    def _shard(self, path: str) -> ShardReader:
        if self._pid != os.getpid():
            self._shards = {}
            self._pid = os.getpid()
        if path not in self._shards:
            self._shards[path] = open_shard(path)
        return self._shards[path]

    def _close_shards(self) -> None:
        for s in self._shards.values():
            s.close()
        self._shards = {}

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_shards"] = {}
        return state

    def _load_clip(self, i: int) -> dict[str, np.ndarray]:
        path, clip_id = self.clips[i]
        shard = self._shard(path)
        out = {
            "frames": _resize_frames(shard.read(clip_id, "frames"), self.image_size),
            "flow": _resize_flow(shard.read(clip_id, "flow"), self.image_size),
            "mfcc": self.normalizer.mfcc(shard.read(clip_id, "mfcc")),
            "mel": self.normalizer.mel(shard.read(clip_id, "mel")),
            "f0_bin": shard.read(clip_id, "f0_bin").astype(np.int64),
            "energy_bin": shard.read(clip_id, "energy_bin").astype(np.int64),
        }
        if self.motion == "keypoints":
            out["heatmaps"] = heatmaps_to_float(shard.read(clip_id, "heatmaps"))
        return out

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def locate(self, index: int) -> tuple[int, int]:
        """Global sample index → ``(clip index, frame t)``."""
        if not 0 <= index < len(self):
            raise IndexError(f"sample index {index} out of range [0, {len(self)})")
        clip = int(np.searchsorted(self.offsets, index, side="right") - 1)
        return clip, int(index - self.offsets[clip])

    def __getitem__(self, key) -> dict[str, torch.Tensor]:
        if isinstance(key, tuple):
            index, draw = int(key[0]), int(key[1])
        else:
            index, draw = int(key), int(torch.randint(0, 2**31 - 1, ()).item())
        clip, t = self.locate(index)
        n = int(self.lengths[clip])
        ref_t = 0 if self.reference == "first" else draw % n
        prev_idx = [max(0, t - k) for k in range(N_PREV, 0, -1)]
        if self._cached is not None:
            c = self._cached[clip]
            frames = c["frames"][prev_idx + [t, ref_t]]
            flow = c["flow"][t]
            feats = {k: c[k][t] for k in ("mfcc", "mel", "f0_bin", "energy_bin")}
            heat = c["heatmaps"][t] if self.motion == "keypoints" else None
        else:
            path, clip_id = self.clips[clip]
            shard = self._shard(path)
            lo = prev_idx[0]
            window = shard.read(clip_id, "frames", slice(lo, t + 1))
            ref = shard.read(clip_id, "frames", slice(ref_t, ref_t + 1))
            frames = np.concatenate([window[[i - lo for i in prev_idx + [t]]], ref])
            frames = _resize_frames(frames, self.image_size)
            flow = _resize_flow(shard.read(clip_id, "flow", slice(t, t + 1)), self.image_size)[0]
            feats = {
                "mfcc": self.normalizer.mfcc(shard.read(clip_id, "mfcc", t)),
                "mel": self.normalizer.mel(shard.read(clip_id, "mel", t)),
                "f0_bin": np.int64(shard.read(clip_id, "f0_bin", t)),
                "energy_bin": np.int64(shard.read(clip_id, "energy_bin", t)),
            }
            heat = heatmaps_to_float(shard.read(clip_id, "heatmaps", t)) if self.motion == "keypoints" else None
        img = frames_to_tensor(frames)  # (7, 3, S, S)
        sample = {
            "reference": img[-1],
            "target": img[-2],
            "prev_frames": img[:N_PREV].reshape(3 * N_PREV, self.image_size, self.image_size),
            "flow": torch.from_numpy(np.asarray(flow, np.float32)),
            "mfcc": torch.from_numpy(np.asarray(feats["mfcc"], np.float32)),
            "mel": torch.from_numpy(np.asarray(feats["mel"], np.float32)),
            "f0_bin": torch.tensor(int(feats["f0_bin"]), dtype=torch.int64),
            "energy_bin": torch.tensor(int(feats["energy_bin"]), dtype=torch.int64),
            "clip": torch.tensor(clip, dtype=torch.int64),
            "t": torch.tensor(t, dtype=torch.int64),
        }
        if heat is not None:
            sample["heatmaps"] = torch.from_numpy(np.asarray(heat, np.float32))
        return sample


# --------------------------------------------------------------------------------- sampling
class StepBatchSampler(Sampler):
    """Yields, for steps ``start_step … end_step − 1``, lists of ``(sample index, reference draw)``.

    Step ``k`` covers positions ``k·B … k·B + B − 1`` of an endless sequence of epoch-wise random
    permutations of ``range(n_items)`` (epoch ``e`` permuted with seed ``(seed, e)``); the
    reference draws come from a generator seeded with ``(seed, k)``. Nothing depends on earlier
    steps, so resuming at ``k`` reproduces the uninterrupted sequence.
    """

    def __init__(self, n_items: int, batch_size: int, seed: int, start_step: int, end_step: int):
        if n_items < 1 or batch_size < 1:
            raise ValueError(f"need n_items >= 1 and batch_size >= 1, got {n_items}, {batch_size}")
        self.n, self.b, self.seed = int(n_items), int(batch_size), int(seed)
        self.start, self.end = int(start_step), int(end_step)
        self._perms: dict[int, torch.Tensor] = {}

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            if len(self._perms) > 4:
                self._perms.pop(min(self._perms))
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perms[epoch] = torch.randperm(self.n, generator=g)
        return self._perms[epoch]

    def batch(self, step: int) -> list[tuple[int, int]]:
        """The batch of one step."""
        g = torch.Generator().manual_seed(self.seed * 2_000_003 + step + 7)
        draws = torch.randint(0, 2**31 - 1, (self.b,), generator=g).tolist()
        out = []
        for j in range(self.b):
            pos = step * self.b + j
            out.append((int(self._perm(pos // self.n)[pos % self.n]), int(draws[j])))
        return out

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start, self.end):
            yield self.batch(step)

    def __len__(self) -> int:
        return max(0, self.end - self.start)
