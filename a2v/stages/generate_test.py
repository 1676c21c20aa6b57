"""Stage 7, generate: for every test clip (splits ``test`` and ``test_unseen``), its first aligned
frame + its audio → a video, by the checkpoint's own recipe (any model; the shard features it
reads are the recipe's).

Each clip gets two files (:func:`deliver_clip`): ``<out_dir>/<speaker>_<clip_id>.mp4``, the video a
user watches (25 fps, H.264 yuv420p crf 18, AAC audio from the clip's source cut to the frames the
align stage kept), and ``<speaker>_<clip_id>.mkv``, the same frames losslessly (FFV1, RGB), which
the evaluate stage scores. **a2v:** every row of the metrics table is scored before lossy encoding
(generated frames from the ``.mkv``, the static baseline and the real clip from the shard's
crops), so that one path serves every row; H.264's 4:2:0 chroma alone costs a real 64×64 crop
about 0.04 SSIM, as much as the gaps between methods. What the delivered mp4 costs on top is
measured separately (evaluate's ``metrics/delivery.csv``).

**a2v:** a model whose ``image_size`` differs from the shard's crop size gets the reference
resized to its size (area / bilinear, :func:`a2v.features.windows.resize_frames`) and its frames
resized back to the crop size, so that every model is scored on the same crops at one resolution.

One-shot variant: when the checkpoint's model fine-tunes to a new face (its
``training.finetune_steps`` > 0, e.g. OneShotA2V §5), every ``test_unseen`` clip is generated a
second time, ``<speaker>_<clip_id>.oneshot.mp4`` / ``.mkv``, by a copy of the model fine-tuned on
that clip's reference frame alone (:meth:`a2v.inference.Generator.finetune`; the weights are
restored before the next clip). ``videos.tsv`` lists it with ``variant`` ``oneshot`` (plain
videos: empty); the evaluate stage scores it into rows ``… one-shot (unseen)``.

Resumable: beside each video a ``<video>.json`` records the checkpoint it was generated from (its
SHA-256) and its frame count, written after both files. A rerun (e.g. after one clip failed)
keeps every clip whose record matches the same checkpoint and regenerates the rest; a new
checkpoint regenerates all. Listed in ``<out_dir>/videos.tsv`` (columns dataset, speaker, clip_id,
split, variant, video, frames, n_frames, seconds).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from a2v.device import resolve_device
from a2v.features.shard import open_shards
from a2v.features.windows import resize_frames
from a2v.inference import load_generator
from a2v.io.audio import load_audio
from a2v.io.video import write_video
from a2v.stages.common import get_logger, progress, write_table
from a2v.stages.select import TEST_SPLITS, read_split


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


def lossless_path(video: str | Path) -> Path:
    """The lossless copy (``.mkv``) beside a delivered ``.mp4``."""
    return Path(video).with_suffix(".mkv")


def deliver_clip(video: str | Path, frames: np.ndarray, fps: float, audio: np.ndarray | None, sample_rate: int) -> tuple[Path, Path]:
    """Write a generated clip the way every clip of the evaluate stage is written: the delivered
    mp4 (H.264 + AAC, :func:`a2v.io.video.write_video`) and its lossless copy (FFV1 ``.mkv``, the
    frames the metrics see). Both atomically.

    Args:
        video: the ``.mp4`` path; the ``.mkv`` goes beside it.
        frames: ``(T, H, W, 3)`` uint8 RGB.
        fps: frame rate in frames/s.
        audio: mono float32 waveform in [-1, 1] at ``sample_rate`` Hz, or ``None``.

    Returns:
        ``(mp4 path, mkv path)``.

    Raises:
        ValueError: frames of the wrong shape or dtype. MediaError: ffmpeg failed.
    """
    mp4 = write_video(video, frames, fps, audio, sample_rate)
    mkv = write_video(lossless_path(video), frames, fps, lossless=True)
    return mp4, mkv


def _kept(video: Path, checkpoint_sha: str, n_frames: int) -> bool:
    """Whether ``video`` and its lossless copy are complete and were generated from this checkpoint
    (its ``.json`` record)."""
    record = video.with_name(video.name + ".json")
    if not (video.is_file() and lossless_path(video).is_file() and record.is_file()):
        return False
    try:
        r = json.loads(record.read_text())
    except (OSError, ValueError):
        return False
    return r.get("checkpoint_sha256") == checkpoint_sha and r.get("n_frames") == n_frames


def _record(video: Path, checkpoint: str | Path, checkpoint_sha: str, n_frames: int) -> None:
    record = video.with_name(video.name + ".json")
    tmp = record.with_name(f".{record.name}.tmp")
    tmp.write_text(json.dumps({"checkpoint": str(checkpoint), "checkpoint_sha256": checkpoint_sha, "n_frames": n_frames,
                               "frames": lossless_path(video).name}))
    os.replace(tmp, record)


def run(config: dict, checkpoint: str | Path, split: str | Path, shards: list[str | Path], out_dir: str | Path,
        device: str = "auto", log_file=None) -> Path:
    """Generate every test clip of the split (``test`` and ``test_unseen``). Returns the listing TSV path."""
    log = get_logger("generate", log_file)
    dev = resolve_device(device)
    model = load_generator(checkpoint, dev)
    checkpoint_sha = file_sha256(checkpoint)
    out_dir = Path(out_dir)
    tests = read_split(split)
    tests = tests[tests["split"].isin(TEST_SPLITS)]
    readers = open_shards(shards)
    rows = []
    oneshot_steps = int(getattr(model.recipe.training, "finetune_steps", 0) or 0)
    if oneshot_steps > 0 and (tests["split"] == "test_unseen").any():
        log.info("unseen speakers' clips are also generated after %d one-shot fine-tuning steps on their reference frame", oneshot_steps)
    for row in progress(list(tests.itertuples(index=False)), "generate"):
        reader = readers.get((row.dataset, row.speaker))
        if reader is None:
            raise LookupError(f"{split}: test clip {row.speaker}/{row.clip_id} has no feature shard among {sorted(map(str, shards))}")
        fps, sr = float(reader.attrs["fps"]), int(reader.attrs["sample_rate"])
        n_frames = int(reader.shape(row.clip_id, "frames")[0])
        variants = [""] + (["oneshot"] if row.split == "test_unseen" and oneshot_steps > 0 else [])
        for variant in variants:
            path = out_dir / f"{row.speaker}_{row.clip_id}{'.' + variant if variant else ''}.mp4"
            if _kept(path, checkpoint_sha, n_frames):
                log.info("%s/%s: %s is already generated from this checkpoint; kept", row.speaker, row.clip_id, path)
            else:
                crop = reader.read(row.clip_id, "frames", 0)
                reference = resize_frames(crop, model.image_size)
                feats = {k: reader.read(row.clip_id, k) for k in model.feature_keys}
                if variant:
                    saved = {k: copy.deepcopy(net.state_dict()) for k, net in model.networks.items()}
                    model.finetune(reference, oneshot_steps, dev, lambda m: log.info("%s/%s: %s", row.speaker, row.clip_id, m))
                frames = resize_frames(model.generate(reference, feats, dev), crop.shape[0])
                if variant:  # the next clip starts from the trained weights again
                    for k, net in model.networks.items():
                        net.load_state_dict(saved[k])
                        net.eval()
                attrs = reader.clip_attrs(row.clip_id)
                audio = clip_audio(attrs["source"], int(attrs["first_frame"]), len(frames), fps, sr)
                path, _ = deliver_clip(path, frames, fps, audio, sr)
                _record(path, checkpoint, checkpoint_sha, len(frames))
                log.info("%s/%s: %d frames -> %s", row.speaker, row.clip_id, len(frames), path)
            rows.append({"dataset": row.dataset, "speaker": row.speaker, "clip_id": row.clip_id, "split": row.split,
                         "variant": variant, "video": str(path), "frames": str(lossless_path(path)), "n_frames": n_frames,
                         "seconds": round(n_frames / fps, 3)})
    for reader in readers.values():
        reader.close()
    return write_table(pd.DataFrame(rows), out_dir / "videos.tsv")
