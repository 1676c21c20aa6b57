"""Training samples from HDF5 feature shards, feature standardisation, and step-indexed batch sampling
— the data side every model recipe shares.

:class:`FrameDataset` serves one video frame ``t`` of one clip per sample (shards of
``results/features/{dataset}/{shard}.h5``, a shard of one or several speakers; see :func:`open_shard`); a recipe says which shard
features it reads (``features``) and how many previous frames (``n_prev``). All keys:

=================  ==================  =========  ==========================================
key                shape               dtype      meaning
=================  ==================  =========  ==========================================
``reference``      (3, S, S)           float32    identity frame of the same clip, RGB [-1, 1]
                                                  (a random frame, or frame 0 for "first")
``target``         (3, S, S)           float32    frame t, RGB [-1, 1]
``prev_frames``    (3·n_prev, S, S)    float32    frames t−n_prev … t−1 (oldest first; indices
                                                  clamped at 0), RGB [-1, 1]; only if n_prev > 0
``flow``           (2, S, S)           float32    Farnebäck flow t−1 → t, pixels of the S crop
``heatmaps``       (15, 96, 96)        float32    keypoint heatmaps [0, 1]
``mfcc``           (20, 13)            float32    standardised MFCC window of frame t
``mel``            (256,)              float32    standardised log-mel vector of frame t
``f0_bin``         ()                  int64      pitch bin 0..255 (0 = unvoiced)
``energy_bin``     ()                  int64      energy bin 0..255
``clip``, ``t``    ()                  int64      clip index in the dataset, frame index
=================  ==================  =========  ==========================================

``reference``, ``target``, ``clip`` and ``t`` are always there; the others only when named in
``features`` (``prev_frames`` when ``n_prev > 0``).

When the model's ``image_size`` differs from the shard's ``crop_size``, frames are resized with
area averaging (cv2 ``INTER_AREA``) and flow is resized and multiplied by
``image_size / crop_size`` (flow is in pixels).

Sampling is **step-indexed**: :class:`StepBatchSampler` derives the batch of step ``k`` from
``(seed, k)`` alone (epoch-wise permutations), so a run resumed at step ``k`` sees exactly the
batches an uninterrupted run would, with any number of DataLoader workers. Each phase draws its
own order: its sampler seed is :func:`phase_seed` of the run's seed and the phase index.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from a2v.features.normalizer import FeatureNormalizer
from a2v.features.shard import ShardReader, heatmaps_to_float
from a2v.features.windows import frames_to_tensor, resize_frames

REFERENCES = ("random", "first")
FRAME_FEATURES = ("flow", "heatmaps", "mfcc", "mel", "f0_bin", "energy_bin")
"""Per-frame shard features a :class:`FrameDataset` can serve."""


def phase_seed(seed: int, phase_index: int) -> int:
    """The seed of phase ``phase_index`` of a run seeded ``seed`` (weights init and batch order):
    distinct per phase, so phase 2 does not replay phase 1's batches."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(phase_index)]).generate_state(1)[0] >> 1)


def resolve_clips(shard_paths: Sequence[str | Path], train_clips: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Map ``(shard, clip id)`` pairs onto the given shard paths.

    The first element of each pair may be a shard path (as listed in ``shard_paths``, or resolving
    to the same file; the second is then the clip's key in it), a shard's stem (the speaker id of
    a shard of one speaker, e.g. ``"s1"``), or a speaker of a shard of several speakers (read from
    the shards' ``speakers`` attribute, only when a pair needs it): its clip is then
    ``(shard path, "<speaker>/<clip id>")`` (:func:`a2v.features.shard.clip_key`). So split.tsv's
    ``(speaker, clip_id)`` pairs resolve whatever ``speakers_per_shard`` is.

    Raises:
        ValueError: a shard that is not among ``shard_paths``, an ambiguous stem, no clip.
    """
    by_resolved = {str(Path(p).resolve()): str(p) for p in shard_paths}
    by_stem: dict[str, list[str]] = {}
    for p in shard_paths:
        by_stem.setdefault(Path(p).stem, []).append(str(p))
    by_speaker: dict[str, list[str]] | None = None  # speaker -> the shards of several speakers holding it
    out = []
    for shard, clip_id in train_clips:
        key = str(Path(shard).resolve())
        if key in by_resolved:
            out.append((by_resolved[key], str(clip_id)))
        elif str(shard) in by_stem and len(by_stem[str(shard)]) == 1:
            out.append((by_stem[str(shard)][0], str(clip_id)))
        else:
            if by_speaker is None:
                by_speaker = _shared_shards(shard_paths)
            hits = by_speaker.get(str(shard), [])
            if len(hits) != 1:
                raise ValueError(f"clip {clip_id!r}: shard {shard!r} is not one of the shard paths (or is an ambiguous stem)")
            out.append((hits[0], f"{shard}/{clip_id}"))
    if not out:
        raise ValueError("train_clips is empty")
    return out


def _shared_shards(shard_paths: Sequence[str | Path]) -> dict[str, list[str]]:
    """``{speaker: [path]}`` of the existing shards among ``shard_paths`` that hold several speakers."""
    out: dict[str, list[str]] = {}
    for p in dict.fromkeys(map(str, shard_paths)):
        if Path(p).is_file():
            with ShardReader(p) as shard:
                speakers = shard.speakers
            if len(speakers) > 1:
                for s in speakers:
                    out.setdefault(s, []).append(p)
    return out


# --------------------------------------------------------------------------------- shard access
def open_shard(path: str | Path) -> ShardReader:
    """Open a feature shard for reading (:class:`a2v.features.shard.ShardReader`).

    Raises:
        FileNotFoundError: no such file.
        ShardSchemaError: the shard has another ``schema_version``.
    """
    return ShardReader(path)


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


def index_and_draw(key) -> tuple[int, int]:
    """A dataset key as :class:`StepBatchSampler` yields it, ``(index, draw)``, or a bare index whose
    ``draw`` (a non-negative int picking the reference frame) comes from torch's global generator."""
    if isinstance(key, tuple):
        return int(key[0]), int(key[1])
    return int(key), int(torch.randint(0, 2**31 - 1, ()).item())


class FrameDataset(Dataset):
    """Per-frame training samples over ``(shard path, clip id)`` pairs (see the module docstring).

    Args:
        clips: ``(shard path, clip id)`` pairs.
        normalizer: MFCC/mel standardisation.
        image_size: S of the model (frames and flow are resized when the shard's differs).
        features: the per-frame shard features served (a subset of :data:`FRAME_FEATURES`).
        n_prev: previous frames served as ``prev_frames`` (0: none).
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
        features: Sequence[str] = ("flow", "mfcc", "mel", "f0_bin", "energy_bin"),
        n_prev: int = 5,
        reference: str = "random",
        cache: bool = True,
    ):
        if reference not in REFERENCES:
            raise ValueError(f"reference must be one of {REFERENCES}, got {reference!r}")
        unknown = sorted(set(features) - set(FRAME_FEATURES))
        if unknown:
            raise ValueError(f"FrameDataset cannot serve {unknown}; it serves {list(FRAME_FEATURES)}")
        if n_prev < 0:
            raise ValueError(f"n_prev must be >= 0, got {n_prev}")
        if not clips:
            raise ValueError("FrameDataset needs at least one clip")
        self.clips = [(str(p), c) for p, c in clips]
        self.normalizer = normalizer
        self.image_size = int(image_size)
        self.features = tuple(features)
        self.n_prev = int(n_prev)
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

    def _convert(self, name: str, a: np.ndarray) -> np.ndarray:
        """Raw shard array(s) of feature ``name`` → what a sample holds (resized, standardised, typed)."""
        if name == "flow":
            return _resize_flow(a, self.image_size)
        if name == "heatmaps":
            return heatmaps_to_float(a)
        if name in FeatureNormalizer.FEATURES:
            if self.normalizer is None:
                raise ValueError(f"FrameDataset serves {name!r} standardised: give it a FeatureNormalizer")
            return self.normalizer.apply(name, a)
        return np.asarray(a).astype(np.int64)

    def _load_clip(self, i: int) -> dict[str, np.ndarray]:
        path, clip_id = self.clips[i]
        shard = self._shard(path)
        out = {"frames": resize_frames(shard.read(clip_id, "frames"), self.image_size)}
        for name in self.features:
            out[name] = self._convert(name, shard.read(clip_id, name))
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
        index, draw = index_and_draw(key)
        clip, t = self.locate(index)
        n = int(self.lengths[clip])
        ref_t = 0 if self.reference == "first" else draw % n
        prev_idx = [max(0, t - k) for k in range(self.n_prev, 0, -1)]
        if self._cached is not None:
            c = self._cached[clip]
            frames = c["frames"][prev_idx + [t, ref_t]]
            feats = {k: c[k][t] for k in self.features}
        else:
            path, clip_id = self.clips[clip]
            shard = self._shard(path)
            lo = prev_idx[0] if prev_idx else t
            window = shard.read(clip_id, "frames", slice(lo, t + 1))
            ref = shard.read(clip_id, "frames", slice(ref_t, ref_t + 1))
            frames = np.concatenate([window[[i - lo for i in prev_idx + [t]]], ref])
            frames = resize_frames(frames, self.image_size)
            feats = {k: self._convert(k, shard.read(clip_id, k, slice(t, t + 1)))[0] for k in self.features}
        img = frames_to_tensor(frames)  # (n_prev + 2, 3, S, S)
        sample = {"reference": img[-1], "target": img[-2]}
        if self.n_prev:
            sample["prev_frames"] = img[: self.n_prev].reshape(3 * self.n_prev, self.image_size, self.image_size)
        for k, v in feats.items():
            sample[k] = torch.tensor(int(v), dtype=torch.int64) if k in ("f0_bin", "energy_bin") else torch.from_numpy(np.asarray(v, np.float32))
        sample["clip"] = torch.tensor(clip, dtype=torch.int64)
        sample["t"] = torch.tensor(t, dtype=torch.int64)
        return sample


class FrameWindows(Dataset):
    """Windows of ``length`` consecutive :class:`FrameDataset` samples of one clip (frames ``t …
    t+L−1``), all with the same reference frame: what a loss on several consecutive generated
    frames needs (the lip-sync expert, :mod:`a2v.losses.sync_expert`) from a per-frame generator.

    Items: every :class:`FrameDataset` key with a leading window axis ``L`` (``target``
    ``(L, 3, S, S)``, ``mfcc`` ``(L, 20, 13)``, ``f0_bin`` ``(L,)``…), plus ``mfcc_raw``
    ``(L, 20, 13)`` float32, the shard's MFCC windows before standardisation (the expert's
    input), when ``mfcc`` is served. Keys as :class:`FrameDataset`'s: ``dataset[(index, draw)]``
    (one ``draw`` picks the window's reference) or ``dataset[index]``.

    Args:
        frames: the per-frame dataset.
        length: L >= 1; clips shorter than L give no window. Windows start at every frame.

    Raises:
        ValueError: ``length`` < 1, or no clip of ``frames`` has ``length`` frames.
    """

    def __init__(self, frames: FrameDataset, length: int):
        if int(length) < 1:
            raise ValueError(f"window length must be >= 1, got {length}")
        self.frames, self.length = frames, int(length)
        self.starts = np.concatenate([np.arange(o, o + n - self.length + 1) for o, n in zip(frames.offsets[:-1], frames.lengths)
                                      if n >= self.length] or [np.zeros(0, np.int64)])
        if not len(self.starts):
            raise ValueError(f"no training clip has {self.length} frames (longest: {int(frames.lengths.max())})")

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, key) -> dict[str, torch.Tensor]:
        index, draw = index_and_draw(key)
        start = int(self.starts[index])
        items = [self.frames[(start + j, draw)] for j in range(self.length)]
        out = {k: torch.stack([it[k] for it in items]) for k in items[0]}
        norm = self.frames.normalizer
        if "mfcc" in out and norm is not None:
            out["mfcc_raw"] = out["mfcc"] * torch.from_numpy(norm.mfcc_std) + torch.from_numpy(norm.mfcc_mean)
        return out


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
