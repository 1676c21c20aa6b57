"""Stage 8, evaluate: per-clip metrics of generated videos and of the static baseline, and
``metrics.csv`` with the papers' published rows beside them.

For each test clip the real frames are the aligned crops in the shard; the generated frames are
decoded back from the mp4 (so codec loss counts); the static baseline repeats the reference frame
(the clip's first crop) for the whole clip. Landmarks for LMD and EAR are measured the same way on
real, generated and baseline frames: dlib's 68-point predictor in the aligned crops' template
face box (:func:`a2v.face.align.template_box`), on frames upscaled to 256×256 (LMD is defined at 256×256, MAN supp. §2.2).

Metrics (definitions in :mod:`a2v.metrics`): SSIM, PSNR, CPBD, LMD, blinks/s, ACD-C, ACD-E;
with the dataset's judges (stage ``train_judge``): WER in % by the pipeline's LipNet
(:mod:`a2v.judges.lipreader`; decoded as its config says, GRID-grammar Viterbi by default,
against the clip's words) and LSE-D / LSE-C /
AV offset by its SyncNet (:mod:`a2v.metrics.sync`). Without a judge its columns are ``NA`` with
the reason logged. A test clip that a judge was trained on is left out of that judge's columns
(logged), so a judge's number is always on unseen clips.

The ``real`` rows score the real test clips themselves where a metric allows (CPBD, blinks/s,
WER: the lip-reader's own error, LSE-C/D): the upper bound that makes the others readable.

``metrics.csv``: one row per method with the mean over test clips of each metric, then
``<metric>_std`` (sample standard deviation) and ``<metric>_n`` (clips with a value), and the
papers' published rows (``kind: published``, source named). A test clip that cannot be scored (an
unreadable video, no video listed, any error of its own) is named in the log and in
``metrics/skipped.tsv`` with the cause, and the other clips are scored; only when no clip can be
scored does the stage fail. ``metrics/per_clip.csv``: every value;
``metrics/ear.csv``: the per-frame EAR of every method and clip (for the report's blink plots).
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
from a2v.metrics.wer import word_error_rate
from a2v.stages.common import get_logger, progress, write_table
from a2v.stages.select import read_split
from a2v.judges import LipReader, SyncScorer, clip_sentence

METRIC_COLUMNS = ["SSIM", "PSNR", "CPBD", "LMD", "blinks_per_s", "WER", "LSE_D", "LSE_C", "AV_offset", "ACD_C", "ACD_E"]
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


def _trained_on(path: str | Path) -> set[tuple[str, str]]:
    """``(speaker, clip id)`` pairs a judge checkpoint was trained on (empty for outside weights)."""
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    clips = (state.get("identity") or {}).get("train_clips", []) if isinstance(state, dict) else []
    return {(Path(shard).stem, str(clip)) for shard, clip in clips}


def summarise(per_clip: pd.DataFrame) -> list[dict]:
    """Mean, sample std and n of every metric per method (rows in order of first appearance)."""
    kinds = {"static baseline": "baseline", "real": "real clips (upper bound)"}
    rows = []
    for method, group in per_clip.groupby("method", sort=False):
        row = {"method": method, "kind": kinds.get(method, "a2v"), "n_clips": len(group), "source": "computed"}
        for c in METRIC_COLUMNS:
            vals = pd.to_numeric(group[c], errors="coerce").dropna() if c in group else pd.Series(dtype=float)
            row[c] = float(vals.mean()) if len(vals) else math.nan
            row[f"{c}_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else math.nan
            row[f"{c}_n"] = len(vals)
        rows.append(row)
    return rows


def run(config: dict, exp: dict, split: str | Path, shards: list[str | Path], videos: str | Path, out_dir: str | Path,
        log_file=None, lipreader: str | Path | None = None, syncnet: str | Path | None = None) -> Path:
    """Write ``<out_dir>/metrics/per_clip.csv`` and ``<out_dir>/metrics.csv``. Returns the latter.

    Args:
        lipreader, syncnet: the judges' checkpoints (``None``: their columns are ``NA``).
    """
    log = get_logger("evaluate", log_file)
    ev = exp["evaluate"]
    out_dir, videos = Path(out_dir), Path(videos)
    listing = pd.read_csv(videos / "videos.tsv", sep="\t", dtype={"clip_id": str, "speaker": str})
    tests = read_split(split).query("split == 'test'")
    readers = open_shards(shards)
    reader_lips = LipReader.load(lipreader) if lipreader else None
    scorer = SyncScorer.load(syncnet) if syncnet else None
    seen = {"WER": _trained_on(lipreader) if lipreader else set(), "LSE": _trained_on(syncnet) if syncnet else set()}
    if reader_lips is None:
        log.info("WER = NA: no lip-reader given (rule train_judge trains one; or set lipreader.weights)")
    if scorer is None:
        log.info("LSE_D, LSE_C, AV_offset = NA: no SyncNet given (rule train_judge trains one; or set syncnet.weights)")
    per_clip, ear_rows, skipped = [], [], []
    for row in progress(list(tests.itertuples(index=False)), "evaluate"):
        clip_rows, clip_ears = [], []
        try:
            reader = readers[(row.dataset, row.speaker)]
            fps = float(reader.attrs["fps"])
            hit = listing[(listing.speaker == row.speaker) & (listing.clip_id == row.clip_id)]
            if hit.empty:
                raise LookupError(f"no generated video listed in {videos / 'videos.tsv'}")
            real = reader.read(row.clip_id, "frames")
            mfcc = reader.read(row.clip_id, "mfcc")
            fake = read_frames(hit.iloc[0]["video"], fps=fps)[: len(real)]
            if len(fake) < len(real):
                log.warning("%s/%s: generated video has %d frames, real %d; comparing the first %d",
                            row.speaker, row.clip_id, len(fake), len(real), len(fake))
                real, mfcc = real[: len(fake)], mfcc[: len(fake)]
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
            key = (row.speaker, row.clip_id)
            sentence = clip_sentence(reader.clip_attrs(row.clip_id)["words"])
            use_wer = reader_lips is not None and key not in seen["WER"]
            use_lse = scorer is not None and key not in seen["LSE"]
            for judge, present, used in (("lip-reader", reader_lips is not None, use_wer), ("SyncNet", scorer is not None, use_lse)):
                if present and not used:
                    log.warning("%s/%s: the %s was trained on this clip; left out of its metrics", row.speaker, row.clip_id, judge)

            def judged(frames: np.ndarray) -> dict:
                out = {"WER": math.nan, "LSE_D": math.nan, "LSE_C": math.nan, "AV_offset": math.nan, "transcript": ""}
                if use_wer:
                    out["transcript"] = reader_lips.read_lips([frames])[0]
                    out["WER"] = 100.0 * word_error_rate([sentence], [out["transcript"]])
                if use_lse:
                    s = scorer.score(frames, mfcc)
                    out.update(LSE_D=s["lse_d"], LSE_C=s["lse_c"], AV_offset=s["offset"])
                return out

            base = {"dataset": row.dataset, "speaker": row.speaker, "clip_id": row.clip_id, "sentence": sentence}
            for method, (frames, lm, emb) in candidates.items():
                m = clip_metrics(real, frames, real_lm, lm, real_emb, emb, fps, ev)
                clip_rows.append({"method": method, **base, **m, **judged(frames)})
                clip_ears += [{"method": method, "speaker": row.speaker, "clip_id": row.clip_id, "frame": i, "ear": float(e)}
                              for i, e in enumerate(eye_aspect_ratio(lm).mean(axis=1))]
            real_ear = eye_aspect_ratio(real_lm).mean(axis=1)
            clip_ears += [{"method": "real", "speaker": row.speaker, "clip_id": row.clip_id, "frame": i, "ear": float(e)}
                          for i, e in enumerate(real_ear)]
            clip_rows.append({"method": "real", **base,
                              **{c: math.nan for c in METRIC_COLUMNS},
                              "CPBD": cpbd_video(real),
                              "blinks_per_s": blinks_per_second(real_ear, fps, ev["blink_ear_threshold"], ev["blink_min_frames"]),
                              **judged(real)})
        except Exception as exc:  # one bad clip loses nothing: it is named and left out, the others are scored
            cause = f"{type(exc).__name__}: {exc}"
            log.error("%s/%s: not scored (%s); left out of metrics.csv", row.speaker, row.clip_id, cause)
            skipped.append({"dataset": row.dataset, "speaker": row.speaker, "clip_id": row.clip_id, "cause": cause})
            continue
        per_clip += clip_rows
        ear_rows += clip_ears

    for reader in readers.values():
        reader.close()
    write_table(pd.DataFrame(skipped, columns=["dataset", "speaker", "clip_id", "cause"]), out_dir / "metrics" / "skipped.tsv")
    if not per_clip:
        raise ValueError(f"{videos}: no test clip could be scored ({len(skipped)} left out; see {out_dir / 'metrics' / 'skipped.tsv'})")
    df = pd.DataFrame(per_clip)
    write_table(df, out_dir / "metrics" / "per_clip.csv", sep=",")
    write_table(pd.DataFrame(ear_rows), out_dir / "metrics" / "ear.csv", sep=",")
    summary = summarise(df) + published_rows(ev["reference_metrics"], exp["dataset"])
    stats = [f"{c}{suffix}" for c in METRIC_COLUMNS for suffix in ("_std", "_n")]
    table = pd.DataFrame(summary, columns=["method", "kind"] + METRIC_COLUMNS + ["n_clips", "source"] + stats)
    table["n_clips"] = table["n_clips"].astype("Int64")
    for c in METRIC_COLUMNS:
        table[f"{c}_n"] = table[f"{c}_n"].astype("Int64")
    path = write_table(table, out_dir / "metrics.csv", sep=",")
    log.info("metrics.csv:\n%s", table[["method", "kind"] + METRIC_COLUMNS + ["n_clips"]].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return path
