"""Stage 8, evaluate: per-clip metrics of generated videos and of the static baseline, and
``metrics.csv`` with the papers' published rows beside them.

For each test clip the real frames are the aligned crops in the shard; the generated frames are
decoded back from the mp4 (so codec loss counts); the static baseline repeats the reference frame
(the clip's first crop) for the whole clip. Landmarks for LMD and EAR are measured the same way on
real, generated and baseline frames: dlib's 68-point predictor in the aligned crops' template
face box (:func:`a2v.face.align.template_box`), on frames upscaled to 256×256 (LMD is defined at 256×256, MAN supp. §2.2).

Metrics (definitions in :mod:`a2v.metrics`): SSIM, PSNR, CPBD, LMD, blinks/s, ACD-C, ACD-E.
WER needs a GRID lip-reader, which a later stage trains: it is ``NA`` with the reason logged.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import yaml

from a2v.face.ear import eye_aspect_ratio
from a2v.face.align import template_box
from a2v.face.landmarks import landmarks_in_box
from a2v.features.shard import open_shards
from a2v.io.video import read_frames
from a2v.metrics.acd import acd_from_embeddings, identity_embeddings
from a2v.metrics.blinks import blinks_per_second
from a2v.metrics.cpbd import cpbd_video
from a2v.metrics.image_quality import psnr, ssim
from a2v.metrics.lmd import lmd
from a2v.stages.common import get_logger, progress, write_table
from a2v.stages.select import read_split

METRIC_COLUMNS = ["SSIM", "PSNR", "CPBD", "LMD", "blinks_per_s", "WER", "ACD_C", "ACD_E"]
NA_REASONS = {"WER": "no GRID lip-reader is trained yet (LipNet stage not built); WER not computed"}
LANDMARK_SIZE = 256


def measure_landmarks(frames: np.ndarray, box: np.ndarray) -> np.ndarray:
    """68 landmarks per frame inside a fixed face box, measured at 256×256.

    Args:
        frames: ``(T, S, S, 3)`` uint8 crops.
        box: ``(left, top, right, bottom)`` in crop pixels.

    Returns:
        ``(T, 68, 2)`` float32 landmarks in pixels of a 256×256 frame.
    """
    scale = LANDMARK_SIZE / frames.shape[1]
    big_box = np.asarray(box, np.float64) * scale
    out = np.empty((len(frames), 68, 2), np.float32)
    for t, frame in enumerate(frames):
        big = cv2.resize(frame, (LANDMARK_SIZE, LANDMARK_SIZE), interpolation=cv2.INTER_CUBIC)
        out[t] = landmarks_in_box(big, big_box)
    return out


def clip_metrics(real: np.ndarray, fake: np.ndarray, real_lm: np.ndarray, fake_lm: np.ndarray,
                 real_emb: np.ndarray, fake_emb: np.ndarray, fps: float, ev: dict) -> dict:
    """All computable metrics of one generated clip against its real frames.

    Landmarks (``(T, 68, 2)`` at 256×256, :func:`measure_landmarks`) and identity embeddings
    (``(T, 128)``, :func:`a2v.metrics.acd.identity_embeddings`) come in precomputed, so that the
    real clip's are measured once for every method compared with it.
    """
    ear = eye_aspect_ratio(fake_lm).mean(axis=1)
    identity = acd_from_embeddings(real_emb, fake_emb)
    return {
        "SSIM": ssim(real, fake),
        "PSNR": psnr(real, fake),
        "CPBD": cpbd_video(fake),
        "LMD": lmd(real_lm, fake_lm, LANDMARK_SIZE, 256),
        "blinks_per_s": blinks_per_second(ear, fps, ev["blink_ear_threshold"], ev["blink_min_frames"]),
        "WER": math.nan,
        "ACD_C": identity["acd_c"],
        "ACD_E": identity["acd_e"],
    }


def published_rows(path: str | Path, dataset: str) -> list[dict]:
    """The papers' rows for a dataset from ``reference_metrics.yaml``."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    rows = []
    for entry in data.get(dataset, []):
        row = {"method": entry["method"], "kind": "published", "n_clips": math.nan, "source": entry.get("source", "")}
        row.update({c: entry.get(c, math.nan) for c in METRIC_COLUMNS})
        rows.append(row)
    return rows


def run(config: dict, exp: dict, split: str | Path, shards: list[str | Path], videos: str | Path, out_dir: str | Path, log_file=None) -> Path:
    """Write ``<out_dir>/metrics/per_clip.csv`` and ``<out_dir>/metrics.csv``. Returns the latter."""
    log = get_logger("evaluate", log_file)
    ev = exp["evaluate"]
    out_dir, videos = Path(out_dir), Path(videos)
    listing = pd.read_csv(videos / "videos.tsv", sep="\t", dtype={"clip_id": str, "speaker": str})
    tests = read_split(split).query("split == 'test'")
    readers = open_shards(shards)
    per_clip = []
    for row in progress(list(tests.itertuples(index=False)), "evaluate"):
        reader = readers[(row.dataset, row.speaker)]
        fps = float(reader.attrs["fps"])
        hit = listing[(listing.speaker == row.speaker) & (listing.clip_id == row.clip_id)]
        if hit.empty:
            log.warning("%s/%s: no generated video listed; clip left out", row.speaker, row.clip_id)
            continue
        real = reader.read(row.clip_id, "frames")
        fake = read_frames(hit.iloc[0]["video"], fps=fps)[: len(real)]
        if len(fake) < len(real):
            log.warning("%s/%s: generated video has %d frames, real %d; comparing the first %d",
                        row.speaker, row.clip_id, len(fake), len(real), len(fake))
            real = real[: len(fake)]
        box = np.asarray(template_box(real.shape[1]))  # where the aligned face sits in every crop
        face_box = tuple(float(v) / real.shape[1] for v in box)
        real_lm = measure_landmarks(real, box)
        real_emb = identity_embeddings(real, face_box)
        t = len(real)
        static = np.repeat(real[:1], t, axis=0)
        candidates = {  # method: (frames, landmarks, identity embeddings)
            "a2v:" + exp["name"]: (fake, measure_landmarks(fake, box), identity_embeddings(fake, face_box)),
            # the baseline's frames are all the reference frame: measure it once
            "static baseline": (static, np.repeat(real_lm[:1], t, axis=0), np.repeat(real_emb[:1], t, axis=0)),
        }
        for method, (frames, lm, emb) in candidates.items():
            m = clip_metrics(real, frames, real_lm, lm, real_emb, emb, fps, ev)
            per_clip.append({"method": method, "dataset": row.dataset, "speaker": row.speaker, "clip_id": row.clip_id, **m})
        real_ear = eye_aspect_ratio(real_lm).mean(axis=1)
        per_clip.append({"method": "real", "dataset": row.dataset, "speaker": row.speaker, "clip_id": row.clip_id,
                         **{c: math.nan for c in METRIC_COLUMNS},
                         "CPBD": cpbd_video(real),
                         "blinks_per_s": blinks_per_second(real_ear, fps, ev["blink_ear_threshold"], ev["blink_min_frames"])})
    for reader in readers.values():
        reader.close()
    for column, reason in NA_REASONS.items():
        log.info("%s = NA: %s", column, reason)
    df = pd.DataFrame(per_clip)
    write_table(df, out_dir / "metrics" / "per_clip.csv", sep=",")
    kinds = {"static baseline": "baseline", "real": "real clips (upper bound)"}
    summary = []
    for method, group in df.groupby("method", sort=False):
        row = {"method": method, "kind": kinds.get(method, "a2v"), "n_clips": len(group), "source": "computed"}
        row.update({c: group[c].mean() if group[c].notna().any() else math.nan for c in METRIC_COLUMNS})
        summary.append(row)
    summary += published_rows(ev["reference_metrics"], exp["dataset"])
    table = pd.DataFrame(summary, columns=["method", "kind"] + METRIC_COLUMNS + ["n_clips", "source"])
    table["n_clips"] = table["n_clips"].astype("Int64")
    path = write_table(table, out_dir / "metrics.csv", sep=",")
    log.info("metrics.csv:\n%s", table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return path
