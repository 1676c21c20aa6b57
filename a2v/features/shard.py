"""The HDF5 feature shard: one file per (dataset, shard), one group per clip; a shard holds one
speaker's clips by default, or several speakers' (see "Shards of several speakers" below).

Schema version 3 (``SCHEMA_VERSION``; 2 added ``mfcc_cran`` and stores heatmaps as uint8; 3 added
the optional ``content`` features and the root attribute ``content_encoder``; the optional
clip-level ``content_mel`` came later within version 3, readers that do not ask for it are unaffected). Root attributes: ``schema_version``, ``a2v_version``,
``dataset``, ``speaker``, ``fps`` (frames/s), ``sample_rate`` (Hz), ``crop_size`` (pixels).
Group ``clips/<clip_id>`` holds the datasets in :data:`DATASETS` (T = frames of the clip kept
after the head-pose filter) and the attributes ``words`` (JSON list), ``phonemes`` (JSON list,
CMU/ARPAbet without stress), ``source`` (path of the source video), ``first_frame`` (index in
the source video, at ``fps``, of the clip's frame 0), ``n_frames``, and ``word_frames`` (JSON list
of ``[start, end, word]`` frame spans ``[start, end)`` of the clip's words, from GRID's
``.align`` files; empty without an alignment, absent in shards written before a2v added it).
Shards of several speakers came later within version 3 too.

Every dataset is chunked one frame per chunk (so a window of frames reads only its own chunks)
and compressed as :data:`STORAGE` says: gzip with byte shuffling for frames, heatmaps and the
small per-frame arrays; LZF for flow, whose float16 noise gzip hardly shrinks (185 vs 212 KiB a
256² frame) at twice LZF's cost. The align stage stores its crops with the same settings, so the
features stage copies their compressed chunks unchanged (:meth:`ShardWriter.add_clip`
``copy_from``) instead of decompressing and recompressing them.

**Shards of several speakers.** A shard holds the clips of the speakers that
:func:`a2v.datasets.source.speaker_shards` groups into it (``datasets.<name>.speakers_per_shard``).
A shard of one speaker is the layout above, unchanged (root attribute ``speaker``, groups
``clips/<clip_id>``). A shard of several speakers has, instead of ``speaker``, the root attribute
``speakers`` (JSON list, sorted) and one group per speaker: ``clips/<speaker>/<clip_id>``, because
clip ids are unique only within a speaker (GRID's sentence codes recur across speakers). Its clip
*keys* (:attr:`ShardReader.clip_ids`, what :meth:`ShardReader.read` takes) are then
``<speaker>/<clip_id>`` (:func:`clip_key`); :meth:`ShardReader.split` gives each key's speaker and
clip id back, and :func:`open_shards` serves each speaker's clips under their own ids. The interim
files of the extract and align stages follow the same rule (root attribute ``speaker`` or
``speakers``, groups ``<clip_id>`` or ``<speaker>/<clip_id>``). An a2v older than this layout reads
a shard of several speakers wrongly (its speaker groups as clips); shards of one speaker read as before.

Shards are written under a temporary name in the same folder and renamed when complete, so a
killed run never leaves a half-written shard under its final name; temporaries that a killed
run left behind are removed when the shard is next written. Writing is deterministic (no
timestamps are stored), so rerunning a stage on the same input gives a byte-identical shard. A
reader refuses a shard of another schema version with :class:`a2v.errors.ShardSchemaError`.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

import a2v
from a2v.errors import ShardSchemaError

SCHEMA_VERSION = 3

HEATMAP_SCALE = 255.0
"""Heatmaps are stored as ``round(HEATMAP_SCALE * h)`` uint8 for ``h`` in [0, 1]."""

DATASETS: dict[str, tuple[str, str]] = {
    "frames": ("uint8", "(T, S, S, 3) RGB aligned face crops"),
    "landmarks": ("float32", "(T, 68, 2) iBUG 68-point landmarks, crop pixels (x, y)"),
    "pose": ("float32", "(T, 3) head yaw, pitch, roll in degrees"),
    "ear": ("float32", "(T, 2) eye aspect ratio, left and right eye"),
    "mfcc": ("float32", "(T, 20, 13) 13 MFCCs x 20 sub-frames over 200 ms centred on the frame"),
    "mfcc_cran": ("float32", "(T, 35, 12) CRAN: MFCC c1-c12 x 35 sub-frames over 350 ms centred on the frame"),
    "mel": ("float32", "(T, 256) log-mel power in dB, 200 ms window centred on the frame"),
    "content": ("float16", "(T, 10, 384) speech-content features (preprocess.content_encoder; absent when null): encoder frames of the 200 ms centred on the frame"),
    "content_mel": ("float16", "(ceil(T * 100 / fps), 80) the clip's Whisper log-mel, 100 rows/s from frame 0's start "
                    "(preprocess.content_mel; absent when false): a clip-level array, not one row per frame"),
    "f0": ("float32", "(T,) F0 in Hz (0 = unvoiced)"),
    "f0_bin": ("uint8", "(T,) F0 quantised to 256 bins"),
    "energy": ("float32", "(T,) L2 norm of the STFT magnitude"),
    "energy_bin": ("uint8", "(T,) energy quantised to 256 bins"),
    "flow": ("float16", "(T, 2, S, S) Farneback flow frame t-1 -> t, pixels"),
    "heatmaps": ("uint8", "(T, 15, 96, 96) keypoint heatmaps, value in units of 1/255 (see heatmaps_to_float)"),
}

CLIP_LEVEL = frozenset({"content_mel"})
"""Datasets whose first axis is not the clip's frames (stored in one chunk, read whole)."""

STORAGE: dict[str, dict[str, Any]] = {name: {"compression": "gzip", "compression_opts": 4, "shuffle": True} for name in DATASETS}
"""h5py ``create_dataset`` filter settings per dataset (chunks are one frame)."""
STORAGE["flow"] = {"compression": "lzf", "shuffle": True}


def storage_kwargs(name: str, shape: tuple[int, ...]) -> dict[str, Any]:
    """``create_dataset`` keyword arguments (chunks, filters, no timestamps) of shard dataset ``name``.

    Args:
        name: a key of :data:`DATASETS`.
        shape: the dataset's full shape ``(T, ...)``.
    """
    kwargs = dict(STORAGE[name], track_times=False)
    if name in CLIP_LEVEL:
        kwargs["chunks"] = tuple(max(1, int(v)) for v in shape)
    elif len(shape) > 1:
        kwargs["chunks"] = (1,) + tuple(shape[1:])
    else:
        kwargs.pop("shuffle")
    return kwargs


def file_speakers(attrs) -> list[str]:
    """The speakers of a shard or interim file, from its root attributes (``speakers`` or ``speaker``)."""
    if "speakers" in attrs:
        return [str(s) for s in json.loads(attrs["speakers"])]
    return [str(attrs["speaker"])]


def speaker_attrs(speakers: Sequence[str]) -> dict[str, str]:
    """The root attribute naming a file's speakers: ``{"speaker": id}`` for one, else
    ``{"speakers": JSON list}`` (sorted)."""
    speakers = list(speakers)
    return {"speaker": speakers[0]} if len(speakers) == 1 else {"speakers": json.dumps(sorted(speakers))}


def clip_key(speakers: Sequence[str], speaker: str, clip_id: str) -> str:
    """The group name of ``speaker``'s clip ``clip_id`` in a file holding ``speakers``: the clip
    id when it holds one speaker, else ``<speaker>/<clip_id>``."""
    return clip_id if len(speakers) == 1 else f"{speaker}/{clip_id}"


def split_key(speakers: Sequence[str], key: str) -> tuple[str, str]:
    """``(speaker, clip id)`` of a clip key (:func:`clip_key`) of a file holding ``speakers``."""
    if len(speakers) == 1:
        return speakers[0], key
    speaker, _, clip_id = key.partition("/")
    return speaker, clip_id


def group_keys(group: h5py.Group, speakers: Sequence[str]) -> list[str]:
    """The clip keys (:func:`clip_key`) below ``group``, sorted (by speaker, then clip id)."""
    if len(speakers) == 1:
        return sorted(group.keys())
    return [f"{s}/{c}" for s in sorted(group.keys()) for c in sorted(group[s].keys())]


def heatmaps_to_float(heatmaps: np.ndarray) -> np.ndarray:
    """Stored uint8 heatmaps -> float32 in [0, 1] (same shape)."""
    return np.asarray(heatmaps, np.float32) / np.float32(HEATMAP_SCALE)


def heatmaps_to_uint8(heatmaps: np.ndarray) -> np.ndarray:
    """float heatmaps in [0, 1] -> the stored uint8 (same shape; 1/255 steps, error <= 0.002)."""
    return np.clip(np.asarray(heatmaps, np.float32) * HEATMAP_SCALE + 0.5, 0, 255).astype(np.uint8)


def _same_storage(src: h5py.Dataset, name: str) -> bool:
    want = storage_kwargs(name, src.shape)
    return (
        src.dtype == np.dtype(DATASETS[name][0])
        and src.chunks == want.get("chunks")
        and src.compression == want["compression"]
        and (src.compression_opts == want.get("compression_opts"))
        and bool(src.shuffle) == bool(want.get("shuffle", False))
        and not src.fletcher32 and src.scaleoffset is None
    )


def _copy_chunks(src: h5py.Dataset, dst_group: h5py.Group, name: str) -> None:
    """Copy a dataset chunk by chunk, still compressed (same shape, chunks and filters)."""
    dst = dst_group.create_dataset(name, shape=src.shape, dtype=src.dtype, **storage_kwargs(name, src.shape))
    for t in range(src.shape[0]):
        offset = (t,) + (0,) * (src.ndim - 1)
        mask, chunk = src.id.read_direct_chunk(offset)
        dst.id.write_direct_chunk(offset, chunk, mask)


class ShardWriter:
    """Write one shard atomically.

    Use as a context manager; on a clean exit the temporary file is renamed to ``path``, on an
    exception it is deleted and ``path`` (if it existed) is left untouched.

    Args:
        path: final ``.h5`` path.
        attrs: root attributes (``dataset``, ``speaker`` or ``speakers`` (:func:`speaker_attrs`),
            ``fps``, ``sample_rate``, ``crop_size``).
    """

    def __init__(self, path: str | Path, attrs: dict[str, Any]):
        self.path = Path(path)
        self.attrs = attrs
        self._tmp: str | None = None
        self._h5: h5py.File | None = None

    def __enter__(self) -> "ShardWriter":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for stale in self.path.parent.glob(f".{self.path.stem}.*.h5.tmp"):
            stale.unlink(missing_ok=True)  # left by a killed run (one writer per shard path)
        fd, self._tmp = tempfile.mkstemp(suffix=".h5.tmp", prefix=f".{self.path.stem}.", dir=self.path.parent)
        os.close(fd)
        self._h5 = h5py.File(self._tmp, "w")
        self._h5.attrs["schema_version"] = SCHEMA_VERSION
        self._h5.attrs["a2v_version"] = a2v.__version__
        for key, value in self.attrs.items():
            self._h5.attrs[key] = value
        self._h5.create_group("clips", track_order=True)
        return self

    def add_clip(self, clip_id: str, arrays: dict[str, np.ndarray], attrs: dict[str, Any],
                 copy_from: dict[str, h5py.Dataset] | None = None) -> None:
        """Store one clip's datasets (names and dtypes of :data:`DATASETS`) and attributes.

        Args:
            clip_id: group name: the clip id (``[A-Za-z0-9_-]``), or ``<speaker>/<clip_id>`` in a
                shard of several speakers (:func:`clip_key`).
            arrays: ``{name: (T, ...) array}``.
            attrs: clip attributes; lists and dicts are stored as JSON.
            copy_from: ``{name: h5py.Dataset}`` written by another stage with this schema's
                storage (:func:`storage_kwargs`): its compressed chunks are copied as they are.
                A source with other storage settings is read and rewritten.

        Raises:
            ValueError: a dataset name outside the schema, a wrong dtype, or unequal lengths (of
                the per-frame datasets; :data:`CLIP_LEVEL` ones have their own).
        """
        assert self._h5 is not None, "use ShardWriter as a context manager"
        copy_from = copy_from or {}
        lengths = {name: len(arr) for name, arr in arrays.items() if name not in CLIP_LEVEL} | {name: d.shape[0] for name, d in copy_from.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"clip {clip_id}: datasets differ in length {lengths}")
        for name in list(arrays) + list(copy_from):
            if name not in DATASETS:
                raise ValueError(f"clip {clip_id}: dataset {name!r} is not in shard schema {SCHEMA_VERSION}")
        group = self._h5["clips"].create_group(clip_id, track_order=True)
        for name, src in copy_from.items():
            if _same_storage(src, name):
                _copy_chunks(src, group, name)
            else:
                arrays = {**arrays, name: src[()]}
        for name, arr in arrays.items():
            dtype = DATASETS[name][0]
            if arr.dtype != np.dtype(dtype):
                raise ValueError(f"clip {clip_id}: {name} must be {dtype}, got {arr.dtype}")
            group.create_dataset(name, data=arr, **storage_kwargs(name, arr.shape))
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
        self._keys: list[str] | None = None

    @property
    def attrs(self) -> dict[str, Any]:
        """Root attributes."""
        return dict(self._h5.attrs)

    @property
    def speakers(self) -> list[str]:
        """The speakers whose clips the shard holds (one, or several: see the module docstring)."""
        return file_speakers(self._h5.attrs)

    @property
    def clip_ids(self) -> list[str]:
        """Clip keys in the shard, sorted: the clip ids, or ``<speaker>/<clip_id>`` in a shard of
        several speakers (:func:`clip_key`)."""
        if self._keys is None:
            self._keys = group_keys(self._h5["clips"], self.speakers)
        return list(self._keys)

    def key(self, speaker: str, clip_id: str) -> str:
        """The clip key of ``speaker``'s clip ``clip_id`` in this shard."""
        return clip_key(self.speakers, speaker, clip_id)

    def split(self, key: str) -> tuple[str, str]:
        """``(speaker, clip id)`` of a clip key of this shard."""
        return split_key(self.speakers, key)

    def for_speaker(self, speaker: str) -> "ShardReader | SpeakerView":
        """The reader itself in a shard of one speaker; else a :class:`SpeakerView` of ``speaker``'s clips.

        Raises:
            KeyError: the shard holds no clip of ``speaker``'s.
        """
        speakers = self.speakers
        if speaker not in speakers:
            raise KeyError(f"{self.path}: speaker {speaker!r} is not in this shard ({', '.join(speakers)})")
        return self if len(speakers) == 1 else SpeakerView(self, speaker)

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


class SpeakerView:
    """One speaker's clips in a shard of several speakers, read by their own clip ids with
    :class:`ShardReader`'s methods (``attrs`` shows ``speaker``; ``close`` closes the shard).

    Args:
        reader: the open shard.
        speaker: one of ``reader.speakers``.
    """

    def __init__(self, reader: ShardReader, speaker: str):
        self.reader, self.speaker, self.path = reader, speaker, reader.path

    @property
    def attrs(self) -> dict[str, Any]:
        attrs = {k: v for k, v in self.reader.attrs.items() if k != "speakers"}
        return {**attrs, "speaker": self.speaker}

    @property
    def clip_ids(self) -> list[str]:
        """This speaker's clip ids, sorted."""
        return [c for s, c in map(self.reader.split, self.reader.clip_ids) if s == self.speaker]

    def _key(self, clip_id: str) -> str:
        return self.reader.key(self.speaker, clip_id)

    def read(self, clip_id: str, name: str, index: slice | int | np.ndarray | None = None) -> np.ndarray:
        return self.reader.read(self._key(clip_id), name, index)

    def has(self, clip_id: str, name: str) -> bool:
        return self.reader.has(self._key(clip_id), name)

    def shape(self, clip_id: str, name: str) -> tuple[int, ...]:
        return self.reader.shape(self._key(clip_id), name)

    def clip_attrs(self, clip_id: str) -> dict[str, Any]:
        return self.reader.clip_attrs(self._key(clip_id))

    def n_frames(self, clip_id: str) -> int:
        return self.reader.n_frames(self._key(clip_id))

    def close(self) -> None:
        self.reader.close()

    def __enter__(self) -> "SpeakerView":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_shards(paths) -> dict[tuple[str, str], ShardReader | SpeakerView]:
    """Readers for several shards keyed by ``(dataset, speaker)``, one per speaker: a shard of
    several speakers gives a :class:`SpeakerView` per speaker, each reading clips by their own
    ids. Close each when done (closing a shard twice is harmless)."""
    readers = {}
    for path in paths:
        reader = ShardReader(path)
        for speaker in reader.speakers:
            readers[(str(reader.attrs["dataset"]), speaker)] = reader.for_speaker(speaker)
    return readers
