"""Stage 7, generate: for every test clip, its first aligned frame + its audio → an mp4, by the
checkpoint's own recipe (any model; the shard features it reads are the recipe's).

Resumable: beside each video a ``<video>.json`` records the checkpoint it was generated from (its
SHA-256) and its frame count, written after the video. A rerun (e.g. after one clip failed)
keeps every video whose record matches the same checkpoint and regenerates the rest; a new
checkpoint regenerates all.

Videos are written to ``<out_dir>/<speaker>_<clip_id>.mp4`` (25 fps, H.264, AAC audio from the
clip's source, cut to the frames the align stage kept) and listed in ``<out_dir>/videos.tsv``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from a2v.device import resolve_device
from a2v.features.shard import open_shards
from a2v.inference import load_generator
from a2v.io.audio import load_audio
from a2v.io.video import write_video
from a2v.stages.common import get_logger, progress, write_table
from a2v.stages.select import read_split


def clip_audio(source: str, first_frame: int, n_frames: int, fps: float, sample_rate: int) -> np.ndarray:
    """The source clip's audio cut to the frames ``[first_frame, first_frame + n_frames)``."""
    audio = load_audio(source, sample_rate, min_rms_dbfs=None)
    start = int(round(first_frame / fps * sample_rate))
    stop = int(round((first_frame + n_frames) / fps * sample_rate))
    out = audio[start:stop]
    return np.pad(out, (0, max(0, stop - start - len(out))))


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _kept(video: Path, checkpoint_sha: str, n_frames: int) -> bool:
    """Whether ``video`` is complete and was generated from this checkpoint (its ``.json`` record)."""
    record = video.with_name(video.name + ".json")
    if not (video.is_file() and record.is_file()):
        return False
    try:
        r = json.loads(record.read_text())
    except (OSError, ValueError):
        return False
    return r.get("checkpoint_sha256") == checkpoint_sha and r.get("n_frames") == n_frames


def _record(video: Path, checkpoint: str | Path, checkpoint_sha: str, n_frames: int) -> None:
    record = video.with_name(video.name + ".json")
    tmp = record.with_name(f".{record.name}.tmp")
    tmp.write_text(json.dumps({"checkpoint": str(checkpoint), "checkpoint_sha256": checkpoint_sha, "n_frames": n_frames}))
    os.replace(tmp, record)


def run(config: dict, checkpoint: str | Path, split: str | Path, shards: list[str | Path], out_dir: str | Path,
        device: str = "auto", log_file=None) -> Path:
    """Generate every test clip of the split. Returns the listing TSV path."""
    log = get_logger("generate", log_file)
    dev = resolve_device(device)
    model = load_generator(checkpoint, dev)
    checkpoint_sha = file_sha256(checkpoint)
    out_dir = Path(out_dir)
    tests = read_split(split).query("split == 'test'")
    readers = open_shards(shards)
    rows = []
    for row in progress(list(tests.itertuples(index=False)), "generate"):
        reader = readers[(row.dataset, row.speaker)]
        fps, sr = float(reader.attrs["fps"]), int(reader.attrs["sample_rate"])
        path = out_dir / f"{row.speaker}_{row.clip_id}.mp4"
        n_frames = int(reader.shape(row.clip_id, "frames")[0])
        if _kept(path, checkpoint_sha, n_frames):
            log.info("%s/%s: %s is already generated from this checkpoint; kept", row.speaker, row.clip_id, path)
        else:
            reference = reader.read(row.clip_id, "frames", 0)
            feats = {k: reader.read(row.clip_id, k) for k in model.feature_keys}
            frames = model.generate(reference, feats, dev)
            attrs = reader.clip_attrs(row.clip_id)
            audio = clip_audio(attrs["source"], int(attrs["first_frame"]), len(frames), fps, sr)
            path = write_video(path, frames, fps, audio, sr)
            _record(path, checkpoint, checkpoint_sha, len(frames))
            log.info("%s/%s: %d frames -> %s", row.speaker, row.clip_id, len(frames), path)
        rows.append({"dataset": row.dataset, "speaker": row.speaker, "clip_id": row.clip_id, "video": str(path),
                     "n_frames": n_frames, "seconds": round(n_frames / fps, 3)})
    for reader in readers.values():
        reader.close()
    return write_table(pd.DataFrame(rows), out_dir / "videos.tsv")
