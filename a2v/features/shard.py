"""The HDF5 feature shard: one file per (dataset, speaker), one group per clip.

Schema version 1 (``SCHEMA_VERSION``). Root attributes: ``schema_version``, ``a2v_version``,
``dataset``, ``speaker``, ``fps`` (frames/s), ``sample_rate`` (Hz), ``crop_size`` (pixels).
Group ``clips/<clip_id>`` holds the datasets in :data:`DATASETS` (T = frames of the clip kept
after the head-pose filter) and the attributes ``words`` (JSON list), ``phonemes`` (JSON list,
CMU/ARPAbet without stress), ``source`` (path of the source video), ``first_frame`` (index in
the source video, at ``fps``, of the clip's frame 0), ``n_frames``.

Shards are written under a temporary name in the same folder and renamed when complete, so a
killed run never leaves a half-written shard under its final name. A reader refuses a shard of
another schema version with :class:`a2v.errors.ShardSchemaError`.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np

import a2v
from a2v.errors import ShardSchemaError

SCHEMA_VERSION = 1

DATASETS: dict[str, tuple[str, str]] = {
    "frames": ("uint8", "(T, S, S, 3) RGB aligned face crops"),
    "landmarks": ("float32", "(T, 68, 2) iBUG 68-point landmarks, crop pixels (x, y)"),
    "pose": ("float32", "(T, 3) head yaw, pitch, roll in degrees"),
    "ear": ("float32", "(T, 2) eye aspect ratio, left and right eye"),
    "mfcc": ("float32", "(T, 20, 13) 13 MFCCs x 20 sub-frames over 200 ms centred on the frame"),
    "mel": ("float32", "(T, 256) log-mel power in dB, 200 ms window centred on the frame"),
    "f0": ("float32", "(T,) F0 in Hz (0 = unvoiced)"),
    "f0_bin": ("uint8", "(T,) F0 quantised to 256 bins"),
    "energy": ("float32", "(T,) L2 norm of the STFT magnitude"),
    "energy_bin": ("uint8", "(T,) energy quantised to 256 bins"),
    "flow": ("float16", "(T, 2, S, S) Farneback flow frame t-1 -> t, pixels"),
    "heatmaps": ("float16", "(T, 15, 96, 96) keypoint heatmaps in [0, 1]"),
}


class ShardWriter:
    """Write one shard atomically.

    Use as a context manager; on a clean exit the temporary file is renamed to ``path``, on an
    exception it is deleted and ``path`` (if it existed) is left untouched.

    Args:
        path: final ``.h5`` path.
        attrs: root attributes (``dataset``, ``speaker``, ``fps``, ``sample_rate``, ``crop_size``).
    """

    def __init__(self, path: str | Path, attrs: dict[str, Any]):
        self.path = Path(path)
        self.attrs = attrs
        self._tmp: str | None = None
        self._h5: h5py.File | None = None

    def __enter__(self) -> "ShardWriter":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(suffix=".h5.tmp", prefix=f".{self.path.stem}.", dir=self.path.parent)
        os.close(fd)
        self._h5 = h5py.File(self._tmp, "w")
        self._h5.attrs["schema_version"] = SCHEMA_VERSION
        self._h5.attrs["a2v_version"] = a2v.__version__
        for key, value in self.attrs.items():
            self._h5.attrs[key] = value
        self._h5.create_group("clips")
        return self

    def add_clip(self, clip_id: str, arrays: dict[str, np.ndarray], attrs: dict[str, Any]) -> None:
        """Store one clip's datasets (names and dtypes of :data:`DATASETS`) and attributes.

        Raises:
            ValueError: a dataset name outside the schema, a wrong dtype, or unequal lengths.
        """
        assert self._h5 is not None, "use ShardWriter as a context manager"
        lengths = {name: len(arr) for name, arr in arrays.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"clip {clip_id}: datasets differ in length {lengths}")
        group = self._h5["clips"].create_group(clip_id)
        for name, arr in arrays.items():
            if name not in DATASETS:
                raise ValueError(f"clip {clip_id}: dataset {name!r} is not in shard schema {SCHEMA_VERSION}")
            dtype = DATASETS[name][0]
            if arr.dtype != np.dtype(dtype):
                raise ValueError(f"clip {clip_id}: {name} must be {dtype}, got {arr.dtype}")
            chunks = (1,) + arr.shape[1:] if arr.ndim > 1 else None
            group.create_dataset(name, data=arr, chunks=chunks, compression="gzip", compression_opts=4, shuffle=arr.ndim > 1)
        for key, value in attrs.items():
            group.attrs[key] = json.dumps(value) if isinstance(value, (list, dict)) else value

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self._h5 is not None and self._tmp is not None
        self._h5.close()
        if exc_type is None:
            os.replace(self._tmp, self.path)
        elif os.path.exists(self._tmp):
            os.unlink(self._tmp)


class ShardReader:
    """Read a shard without loading it whole.

    Args:
        path: shard file.

    Raises:
        FileNotFoundError: no such file.
        ShardSchemaError: the shard was written with another schema version.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: shard not found")
        self._h5 = h5py.File(self.path, "r")
        version = int(self._h5.attrs.get("schema_version", -1))
        if version != SCHEMA_VERSION:
            self._h5.close()
            raise ShardSchemaError(
                f"{self.path}: shard schema version {version}, this a2v reads version {SCHEMA_VERSION}; "
                "rerun the features stage"
            )

    @property
    def attrs(self) -> dict[str, Any]:
        """Root attributes."""
        return dict(self._h5.attrs)

    @property
    def clip_ids(self) -> list[str]:
        """Clip ids in the shard, sorted."""
        return sorted(self._h5["clips"].keys())

    def read(self, clip_id: str, name: str, index: slice | int | np.ndarray | None = None) -> np.ndarray:
        """One dataset of one clip, whole (``index=None``) or an int, slice or index list along T.

        Raises:
            KeyError: unknown clip or dataset, naming both and the file.
        """
        try:
            return self._h5["clips"][clip_id][name][slice(None) if index is None else index]
        except KeyError as exc:
            raise KeyError(f"{self.path}: no dataset {name!r} for clip {clip_id!r}") from exc

    def has(self, clip_id: str, name: str) -> bool:
        """Whether the shard holds dataset ``name`` for ``clip_id``."""
        clips = self._h5["clips"]
        return clip_id in clips and name in clips[clip_id]

    def shape(self, clip_id: str, name: str) -> tuple[int, ...]:
        """Shape of one dataset of one clip, without reading it."""
        return tuple(self._h5["clips"][clip_id][name].shape)

    def clip_attrs(self, clip_id: str) -> dict[str, Any]:
        """Attributes of one clip, JSON lists decoded."""
        out = {}
        for key, value in self._h5["clips"][clip_id].attrs.items():
            if isinstance(value, str) and value[:1] in "[{":
                value = json.loads(value)
            out[key] = value
        return out

    def n_frames(self, clip_id: str) -> int:
        """Number of frames T of one clip."""
        return int(self._h5["clips"][clip_id]["frames"].shape[0])

    def close(self) -> None:
        self._h5.close()

    def __enter__(self) -> "ShardReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_shards(paths) -> dict[tuple[str, str], ShardReader]:
    """Readers for several shards keyed by ``(dataset, speaker)``; close each when done."""
    readers = {}
    for path in paths:
        reader = ShardReader(path)
        readers[(str(reader.attrs["dataset"]), str(reader.attrs["speaker"]))] = reader
    return readers
