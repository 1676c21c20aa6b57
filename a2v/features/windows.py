"""Torch-ready windows of consecutive frames from feature shards, for the sequence models.

OneShotA2V, CRAN and the speech-driven GAN of Jain et al. train on sequences: a reference
(identity) frame, ``T`` consecutive frames and the audio features aligned to them. A
:class:`ClipWindows` dataset cuts every clip of one or more shards into windows of ``length``
frames every ``stride`` frames and reads a window's frames and features on demand (one HDF5
chunk per frame, :mod:`a2v.features.shard`), so a shard is never loaded whole. HDF5 files are
opened lazily in each DataLoader worker.

A sample (``T`` = ``length``, ``S`` = crop size):

=================  ==================  =========  ==========================================
key                shape               dtype      meaning
=================  ==================  =========  ==========================================
``reference``      (3, S, S)           float32    identity frame of the same clip, RGB [-1, 1]
``frames``         (T, 3, S, S)        float32    the window's frames, RGB [-1, 1]
``mfcc``           (T, 20, 13)         float32    per-frame features as in the shard schema;
``mfcc_cran``      (T, 35, 12)         float32    only the names asked for in ``features``
``mel``            (T, 256)            float32
``f0``/``energy``  (T,)                float32    Hz / STFT L2 norm
``f0_bin`` …       (T,)                int64      the 256-level bins
``flow``           (T, 2, S, S)        float32    pixels
``heatmaps``       (T, 15, 96, 96)     float32    [0, 1]
``landmarks``      (T, 68, 2)          float32    crop pixels
``ear``, ``pose``  (T, 2), (T, 3)      float32    eye aspect ratio; yaw, pitch, roll (degrees)
``content_mel``    (M, 80)             float32    the clip's Whisper log-mel around the window
``content_index``  (T,)                int64      (with ``content_mel``) where each frame's 200 ms
                                                  starts in the encoder output (50 Hz) of that
                                                  segment (:func:`a2v.audio.content.mel_segment`)
``clip``           ()                  int64      index into :attr:`ClipWindows.clips`
``start``          ()                  int64      frame of the clip where the window begins
=================  ==================  =========  ==========================================
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from a2v.features.shard import DATASETS, ShardReader, heatmaps_to_float

REFERENCES = ("first", "random")


def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """``(..., S, S, 3)`` uint8 RGB -> ``(..., 3, S, S)`` float32 in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).float().div_(127.5).sub_(1.0)
    return x.movedim(-1, -3).contiguous()


def feature_to_tensor(name: str, array: np.ndarray) -> torch.Tensor:
    """A shard dataset's array as the tensor of the table above (bins int64, heatmaps in [0, 1])."""
    if name == "heatmaps":
        return torch.from_numpy(heatmaps_to_float(array))
    if name.endswith("_bin"):
        return torch.from_numpy(np.asarray(array, np.int64))
    return torch.from_numpy(np.asarray(array, np.float32))


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """``(..., S, S, 3)`` uint8 frames resized to ``(..., size, size, 3)`` (cv2 area averaging when
    shrinking, bilinear when growing); returned unchanged when ``S == size``."""
    if frames.shape[-3] == size and frames.shape[-2] == size:
        return frames
    import cv2

    interp = cv2.INTER_AREA if frames.shape[-2] > size else cv2.INTER_LINEAR
    flat = frames.reshape(-1, *frames.shape[-3:])
    out = np.stack([cv2.resize(f, (size, size), interpolation=interp) for f in flat])
    return out.reshape(*frames.shape[:-3], size, size, 3)


class ClipWindows(Dataset):
    """Windows of ``length`` consecutive frames of every clip of the given shards.

    Args:
        shard_paths: feature shards (schema :data:`a2v.features.shard.SCHEMA_VERSION`).
        length: frames per window ``T`` (>= 1). Clips shorter than ``length`` give no window.
        stride: frames between window starts (``length`` = no overlap).
        features: shard datasets to return besides ``reference`` and ``frames``.
        clip_ids: keep only these clips (e.g. a training split): clip ids, or ``(shard path,
            clip id)`` pairs where ids repeat across shards; all clips when None.
        reference: ``"first"`` (frame 0 of the clip) or ``"random"`` (a frame drawn from
            ``(seed, index)``, so the same index always gets the same reference).
        seed: seed of the random reference.
        image_size: resize frames to this side (area when shrinking, bilinear when growing);
            ``None`` keeps the shard's crop size.
        content_context_s: seconds of audio context each side of the window in ``content_mel``
            segments (``M = ceil(T * 100 / fps) + 2 * round(100 * content_context_s)``, even).

    Items: ``dataset[index]``, or ``dataset[(index, draw)]`` as
    :class:`a2v.training.data.StepBatchSampler` yields them (a ``"random"`` reference is then
    frame ``draw % n_frames`` of the clip).

    Raises:
        ValueError: ``length``/``stride`` < 1, an unknown feature or reference mode.
        FileNotFoundError, ShardSchemaError: from :class:`ShardReader`.
    """

    def __init__(self, shard_paths: Iterable[str | Path], length: int, stride: int | None = None,
                 features: Sequence[str] = ("mfcc",), clip_ids: Iterable[str] | None = None,
                 reference: str = "first", seed: int = 0, image_size: int | None = None, content_context_s: float = 1.0):
        if int(length) < 1 or (stride is not None and int(stride) < 1):
            raise ValueError(f"length and stride must be >= 1, got {length}, {stride}")
        unknown = [f for f in features if f not in DATASETS or f == "frames"]
        if unknown:
            raise ValueError(f"unknown window features {unknown}; choose from {sorted(set(DATASETS) - {'frames'})}")
        if reference not in REFERENCES:
            raise ValueError(f"reference must be one of {REFERENCES}, got {reference!r}")
        self.length = int(length)
        self.stride = int(stride or length)
        self.features = tuple(features)
        self.reference = reference
        self.seed = int(seed)
        self.image_size = None if image_size is None else int(image_size)
        self.content_context_s = float(content_context_s)
        self.fps: dict[str, float] = {}
        wanted = None if clip_ids is None else {(str(Path(c[0]).resolve()), str(c[1])) if isinstance(c, tuple) else c for c in clip_ids}
        self.clips: list[tuple[str, str, int]] = []  # (shard path, clip id, n_frames)
        self.windows: list[tuple[int, int]] = []  # (clip index, start)
        for path in shard_paths:
            key = str(Path(path).resolve())
            with ShardReader(path) as shard:
                self.fps[str(path)] = float(shard.attrs["fps"])
                for clip_id in shard.clip_ids:
                    if wanted is not None and clip_id not in wanted and (key, clip_id) not in wanted:
                        continue
                    n = shard.n_frames(clip_id)
                    self.clips.append((str(path), clip_id, n))
                    for start in range(0, n - self.length + 1, self.stride):
                        self.windows.append((len(self.clips) - 1, start))
        self._readers: dict[str, ShardReader] = {}

    def __len__(self) -> int:
        return len(self.windows)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_readers"] = {}  # h5py handles do not cross process boundaries
        return state

    def _reader(self, path: str) -> ShardReader:
        if path not in self._readers:
            self._readers[path] = ShardReader(path)
        return self._readers[path]

    def reference_frame(self, index: int) -> int:
        """The frame of the window's clip used as the identity reference of sample ``index``."""
        clip, _ = self.windows[index]
        n = self.clips[clip][2]
        if self.reference == "first":
            return 0
        return int(np.random.default_rng([self.seed, index]).integers(n))

    def _frames(self, frames: np.ndarray) -> torch.Tensor:
        return frames_to_tensor(frames if self.image_size is None else resize_frames(frames, self.image_size))

    def __getitem__(self, key) -> dict[str, torch.Tensor]:
        index, draw = (int(key[0]), int(key[1])) if isinstance(key, tuple) else (int(key), None)
        if not 0 <= index < len(self.windows):
            raise IndexError(f"window index {index} out of range [0, {len(self.windows)})")
        clip, start = self.windows[index]
        path, clip_id, n = self.clips[clip]
        shard = self._reader(path)
        span = slice(start, start + self.length)
        ref = draw % n if draw is not None and self.reference == "random" else self.reference_frame(index)
        sample = {
            "reference": self._frames(shard.read(clip_id, "frames", ref)),
            "frames": self._frames(shard.read(clip_id, "frames", span)),
        }
        for name in self.features:
            if name == "content_mel":
                from a2v.audio.content import mel_segment

                segment, index = mel_segment(shard.read(clip_id, name), start, self.length, self.fps[path], self.content_context_s)
                sample[name], sample["content_index"] = torch.from_numpy(segment), torch.from_numpy(index)
            else:
                sample[name] = feature_to_tensor(name, shard.read(clip_id, name, span))
        sample["clip"] = torch.tensor(clip, dtype=torch.int64)
        sample["start"] = torch.tensor(start, dtype=torch.int64)
        return sample

    def close(self) -> None:
        """Close the HDF5 files this process opened."""
        for reader in self._readers.values():
            reader.close()
        self._readers = {}
