"""Stage 8, evaluate: per-clip metrics of generated videos and of the static baseline, and
``metrics.csv`` with the papers' published rows beside them.

**One scoring path.** Every row's frames reach the metrics before lossy encoding: the generated
clip's lossless copy (the ``.mkv`` of :func:`a2v.stages.generate_test.deliver_clip`), the static
baseline (the clip's first aligned crop repeated) and the real clip (the shard's aligned crops).
**a2v:** scoring the delivered H.264 mp4 instead would charge the model alone for 4:2:0 chroma
(about 0.04 SSIM on a real 64×64 crop); what the mp4 costs is measured apart, per generated
clip, in ``metrics/delivery.csv`` (SSIM / PSNR of the mp4's frames against the lossless ones).

Landmarks for LMD and EAR are measured the same way on real, generated and baseline frames:
dlib's 68-point predictor in the aligned crops' template face box
(:func:`a2v.face.align.template_box`), on frames upscaled to 256×256 (LMD is defined at 256×256,
MAN supp. §2.2).

Metrics (definitions in :mod:`a2v.metrics`): SSIM, PSNR, CPBD, LMD, blinks/s, ACD-C, ACD-E;
with the dataset's judges (stage ``train_judge``): WER in % by the pipeline's LipNet
(:mod:`a2v.judges.lipreader`) decoded two ways, ``WER`` through GRID's sentence grammar and
``WER_greedy`` by free CTC best path (the grammar alone takes a blind reader to about 80 %, not
100 %), and LSE-D / LSE-C / AV offset by its SyncNet (:mod:`a2v.metrics.sync`). Without a judge
its columns are ``NA`` with the reason logged; a lip-reader is used only on a corpus of its
vocabulary (:func:`a2v.datasets.registry.lipreader_reason`). A test clip that a judge was trained
on is left out of that judge's columns (logged), so a judge's number is always on unseen clips.

The ``real`` rows score the real test clips themselves where a metric allows (CPBD, blinks/s,
WER: the lip-reader's own error, LSE-C/D): the bound that makes the others readable. Clips of
the split ``test_unseen`` (the dataset's ``unseen_speakers``) are scored into rows of their own,
``<method> (unseen)``: there the real row shows the judges' error on speakers they never saw.

``metrics.csv``: one row per method with the mean over test clips of each metric, then
``<metric>_std`` (sample standard deviation) and ``<metric>_n`` (clips with a value), and the
papers' published rows (``kind: published``, source named; ``not_comparable`` lists the metrics
whose published definition differs from a2v's, per ``reference_metrics.yaml``'s ``comparable:``).

Tails. A test clip that cannot be scored (an unreadable video, no video listed, any error of its
own) is named in the log and in ``metrics/skipped.tsv`` with the cause, and the other clips are
scored; only when no clip can be scored does the stage fail. Each scored clip is written at once
to ``metrics/clips/<split>/<speaker>_<clip_id>.json`` with the identity of what it was scored
from (SHA-256 of the frames file and of each judge, the shard's size and time, the evaluate
settings): a rerun after a kill reuses those whose identity matches and scores the rest.
``metrics/per_clip.csv``: every value; ``metrics/ear.csv``: the per-frame EAR of every method and
clip (for the report's blink plots).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import yaml

from a2v.datasets.registry import lipreader_reason
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
from a2v.stages.generate_test import file_sha256
from a2v.stages.select import TEST_SPLITS, read_split
from a2v.judges import LipReader, SyncScorer, clip_sentence

METRIC_COLUMNS = ["SSIM", "PSNR", "CPBD", "LMD", "blinks_per_s", "WER", "WER_greedy", "LSE_D", "LSE_C", "AV_offset", "ACD_C", "ACD_E"]
LANDMARK_SIZE = 256
EVALUATE_VERSION = 2
"""Bumped when a metric's computation changes: per-clip results of another version are rescored."""
UNSEEN = " (unseen)"
"""Suffix of the rows scored on the ``test_unseen`` split."""
ONESHOT = " one-shot"
"""Added to the model's name for its videos made after one-shot fine-tuning (``variant`` ``oneshot``)."""


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


def comparability(path: str | Path) -> dict[str, dict]:
    """``reference_metrics.yaml``'s ``comparable:`` section: per metric ``{"comparable": bool,
    "reason": str}`` — whether the papers' definition of the metric matches a2v's, and why.

    Raises:
        ValueError: an entry without a boolean ``comparable`` or a ``reason``.
    """
    data = yaml.safe_load(Path(path).read_text()) or {}
    out = {}
    for metric, entry in (data.get("comparable") or {}).items():
        if not isinstance(entry, dict) or not isinstance(entry.get("comparable"), bool) or not entry.get("reason"):
            raise ValueError(f"{path}: comparable.{metric} needs a boolean 'comparable' and a 'reason'")
        out[metric] = entry
    return out


def published_rows(path: str | Path, dataset: str) -> list[dict]:
    """The papers' rows for a dataset from ``reference_metrics.yaml``.

    Each row's ``not_comparable`` lists (``;``-separated) the metrics it reports whose definition
    differs from a2v's: the file's ``comparable:`` section, overridden per row by the row's own
    ``comparable: {<metric>: bool}``. A metric the section does not cover counts as not comparable.
    """
    data = yaml.safe_load(Path(path).read_text()) or {}
    table = comparability(path)
    rows = []
    for entry in data.get(dataset, []):
        row = {"method": entry["method"], "kind": "published", "n_clips": math.nan, "source": entry.get("source", "")}
        row.update({c: entry.get(c, math.nan) for c in METRIC_COLUMNS})
        own = entry.get("comparable") or {}
        reported = [c for c in METRIC_COLUMNS if c in entry]
        row["not_comparable"] = ";".join(c for c in reported if not own.get(c, table.get(c, {}).get("comparable", False)))
        rows.append(row)
    return rows


def _trained_on(path: str | Path) -> set[tuple[str, str]]:
    """``(speaker, clip id)`` pairs a judge checkpoint was trained on (empty for outside weights)."""
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    clips = (state.get("identity") or {}).get("train_clips", []) if isinstance(state, dict) else []
    # a2v: a clip key of a shard of several speakers is "<speaker>/<clip id>" (a2v.features.shard);
    # a shard of one speaker is named by its speaker id
    return {tuple(str(clip).split("/", 1)) if "/" in str(clip) else (Path(shard).stem, str(clip)) for shard, clip in clips}


def summarise(per_clip: pd.DataFrame) -> list[dict]:
    """Mean, sample std and n of every metric per method (rows in order of first appearance)."""
    kinds = {"static baseline": "baseline", "real": "real clips (upper bound)"}
    rows = []
    for method, group in per_clip.groupby("method", sort=False):
        base = method.removesuffix(UNSEEN)
        row = {"method": method, "kind": kinds.get(base, "a2v"), "n_clips": len(group), "source": "computed",
               "not_comparable": ""}
        for c in METRIC_COLUMNS:
            vals = pd.to_numeric(group[c], errors="coerce").dropna() if c in group else pd.Series(dtype=float)
            row[c] = float(vals.mean()) if len(vals) else math.nan
            row[f"{c}_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else math.nan
            row[f"{c}_n"] = len(vals)
        rows.append(row)
    return rows


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, default=float))
    os.replace(tmp, path)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _method(name: str, split: str) -> str:
    return name + (UNSEEN if split == "test_unseen" else "")


def run(config: dict, exp: dict, split: str | Path, shards: list[str | Path], videos: str | Path, out_dir: str | Path,
        log_file=None, lipreader: str | Path | None = None, syncnet: str | Path | None = None) -> Path:
    """Write ``<out_dir>/metrics/per_clip.csv``, ``metrics/ear.csv``, ``metrics/delivery.csv``,
    ``metrics/skipped.tsv`` and ``<out_dir>/metrics.csv``. Returns the latter.

    Args:
        config: the merged config (its ``datasets`` section says the corpus's vocabulary).
        exp: the experiment (:func:`a2v.config.experiment`).
        split: the experiment's ``split.tsv``; clips of splits ``test`` and ``test_unseen`` are scored.
        shards: the feature shards of the experiment's speakers and unseen speakers.
        videos: the generate stage's folder (its ``videos.tsv`` lists ``video`` and ``frames``).
        lipreader, syncnet: the judges' checkpoints (``None``: their columns are ``NA``).

    Raises:
        ValueError: no test clip could be scored.
    """
    log = get_logger("evaluate", log_file)
    ev = exp["evaluate"]
    out_dir, videos = Path(out_dir), Path(videos)
    listing = pd.read_csv(videos / "videos.tsv", sep="\t", dtype={"clip_id": str, "speaker": str})
    table = read_split(split)
    tests = table[table["split"].isin(TEST_SPLITS)]
    not_read = lipreader_reason(exp["dataset"], config["datasets"][exp["dataset"]])
    if not_read and lipreader:
        log.warning("WER = NA: %s (the lip-reader %s is not used)", not_read, lipreader)
        lipreader = None
    elif not_read:
        log.info("WER = NA: %s", not_read)
    elif lipreader is None:
        log.info("WER = NA: no lip-reader given (rule train_judge trains one; or set lipreader.weights)")
    if syncnet is None:
        log.info("LSE_D, LSE_C, AV_offset = NA: no SyncNet given (rule train_judge trains one; or set syncnet.weights)")
    readers = open_shards(shards)
    reader_lips = LipReader.load(lipreader) if lipreader else None
    scorer = SyncScorer.load(syncnet) if syncnet else None
    seen = {"WER": _trained_on(lipreader) if lipreader else set(), "LSE": _trained_on(syncnet) if syncnet else set()}
    judges_id = {"lipreader": file_sha256(lipreader) if lipreader else None,
                 "syncnet": file_sha256(syncnet) if syncnet else None}
    settings = {k: ev[k] for k in ("blink_ear_threshold", "blink_min_frames")}
    per_clip, ear_rows, delivery, skipped = [], [], [], []
    reused = 0
    for row in progress(list(tests.itertuples(index=False)), "evaluate"):
        cache = out_dir / "metrics" / "clips" / row.split / f"{row.speaker}_{row.clip_id}.json"
        try:
            reader = readers.get((row.dataset, row.speaker))
            if reader is None:
                raise LookupError(f"no feature shard of speaker {row.speaker} given")
            hits = listing[(listing.speaker == row.speaker) & (listing.clip_id == row.clip_id)]
            variant = hits["variant"].astype(object).fillna("").astype(str) if "variant" in hits.columns else pd.Series("", index=hits.index)
            hit, oneshot = hits[variant == ""], hits[variant == "oneshot"]
            if hit.empty:
                raise LookupError(f"no generated video listed in {videos / 'videos.tsv'}")
            if "frames" not in hit.columns or pd.isna(hit.iloc[0]["frames"]):
                raise LookupError(f"{videos / 'videos.tsv'} lists no lossless frames file (made by an older a2v: rerun generate_test)")
            frames_file = Path(hit.iloc[0]["frames"])
            if not frames_file.is_file():
                raise FileNotFoundError(f"{frames_file}: the generated clip's lossless frames are missing")
            oneshot_file = Path(oneshot.iloc[0]["frames"]) if len(oneshot) else None
            if oneshot_file is not None and not oneshot_file.is_file():
                raise FileNotFoundError(f"{oneshot_file}: the one-shot clip's lossless frames are missing")
            shard_stat = Path(reader.path).stat()
            key = {"version": EVALUATE_VERSION, "experiment": exp["name"], "frames_sha256": file_sha256(frames_file),
                   "oneshot_sha256": file_sha256(oneshot_file) if oneshot_file else None,
                   "video": str(hit.iloc[0]["video"]), "shard": [shard_stat.st_size, shard_stat.st_mtime_ns],
                   **judges_id, **settings}
            done = _read_json(cache)
            if done is not None and done.get("key") == key:
                reused += 1
            else:
                done = {"key": key, **_score_clip(row, reader, frames_file, Path(hit.iloc[0]["video"]), exp["name"], ev,
                                                  reader_lips if (row.speaker, row.clip_id) not in seen["WER"] else None,
                                                  scorer if (row.speaker, row.clip_id) not in seen["LSE"] else None, log,
                                                  oneshot_file)}
                for judge, present, key_ in (("lip-reader", reader_lips, "WER"), ("SyncNet", scorer, "LSE")):
                    if present is not None and (row.speaker, row.clip_id) in seen[key_]:
                        log.warning("%s/%s: the %s was trained on this clip; left out of its metrics", row.speaker, row.clip_id, judge)
                _write_json(cache, done)
        except Exception as exc:  # one bad clip loses nothing: it is named and left out, the others are scored
            cause = f"{type(exc).__name__}: {exc}"
            log.error("%s/%s: not scored (%s); left out of metrics.csv", row.speaker, row.clip_id, cause)
            skipped.append({"dataset": row.dataset, "speaker": row.speaker, "clip_id": row.clip_id, "split": row.split, "cause": cause})
            continue
        per_clip += done["rows"]
        ear_rows += done["ears"]
        delivery.append(done["delivery"])
    if reused:
        log.info("%d clips reused from an earlier run (metrics/clips/*: same frames, shard, judges and settings)", reused)

    for reader in readers.values():
        reader.close()
    write_table(pd.DataFrame(skipped, columns=["dataset", "speaker", "clip_id", "split", "cause"]), out_dir / "metrics" / "skipped.tsv")
    if not per_clip:
        raise ValueError(f"{videos}: no test clip could be scored ({len(skipped)} left out; see {out_dir / 'metrics' / 'skipped.tsv'})")
    df = pd.DataFrame(per_clip)
    write_table(df, out_dir / "metrics" / "per_clip.csv", sep=",")
    write_table(pd.DataFrame(ear_rows), out_dir / "metrics" / "ear.csv", sep=",")
    deliv = pd.DataFrame(delivery)
    write_table(deliv, out_dir / "metrics" / "delivery.csv", sep=",")
    log.info("delivered mp4 (H.264 yuv420p) against the scored lossless frames: SSIM %.4f, PSNR %.2f dB (mean of %d clips)",
             deliv["SSIM"].mean(), deliv["PSNR"].mean(), len(deliv))
    summary = summarise(df) + published_rows(ev["reference_metrics"], exp["dataset"])
    stats = [f"{c}{suffix}" for c in METRIC_COLUMNS for suffix in ("_std", "_n")]
    out = pd.DataFrame(summary, columns=["method", "kind"] + METRIC_COLUMNS + ["n_clips", "source", "not_comparable"] + stats)
    out["n_clips"] = out["n_clips"].astype("Int64")
    for c in METRIC_COLUMNS:
        out[f"{c}_n"] = out[f"{c}_n"].astype("Int64")
    path = write_table(out, out_dir / "metrics.csv", sep=",")
    log.info("metrics.csv:\n%s", out[["method", "kind"] + METRIC_COLUMNS + ["n_clips"]].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return path


def _score_clip(row, reader, frames_file: Path, video: Path, exp_name: str, ev: dict, reader_lips, scorer, log,
                oneshot_file: Path | None = None) -> dict:
    """Every row of one test clip: ``{"rows": [...], "ears": [...], "delivery": {...}}``.

    ``reader_lips`` / ``scorer``: the judges to use on this clip (``None``: not used on it).
    ``oneshot_file``: the lossless frames made after one-shot fine-tuning (scored as the model's
    ``… one-shot`` row), or ``None``.
    """
    fps = float(reader.attrs["fps"])
    real = reader.read(row.clip_id, "frames")
    mfcc = reader.read(row.clip_id, "mfcc")
    fake = read_frames(frames_file, fps=fps)[:, : real.shape[1], : real.shape[2]]
    mp4 = read_frames(video, fps=fps)[:, : real.shape[1], : real.shape[2]]
    t = min(len(fake), len(mp4))
    delivered = {"dataset": row.dataset, "speaker": row.speaker, "clip_id": row.clip_id, "split": row.split,
                 "SSIM": ssim(fake[:t], mp4[:t]), "PSNR": psnr(fake[:t], mp4[:t])}
    fake = fake[: len(real)]
    if len(fake) < len(real):
        log.warning("%s/%s: generated video has %d frames, real %d; comparing the first %d",
                    row.speaker, row.clip_id, len(fake), len(real), len(fake))
        real, mfcc = real[: len(fake)], mfcc[: len(fake)]
    box = np.asarray(template_box(real.shape[1]))  # where the aligned face sits in every crop
    face_box = tuple(float(v) / real.shape[1] for v in box)
    real_lm = measure_landmarks(real, box)
    real_emb = identity_embeddings(real, face_box)
    n = len(real)
    static = np.repeat(real[:1], n, axis=0)
    candidates = {  # method: (frames, landmarks, identity embeddings)
        "a2v:" + exp_name: (fake, measure_landmarks(fake, box), identity_embeddings(fake, face_box)),
        # the baseline's frames are all the reference frame: measure it once
        "static baseline": (static, np.repeat(real_lm[:1], n, axis=0), np.repeat(real_emb[:1], n, axis=0)),
    }
    if oneshot_file is not None:
        tuned = read_frames(oneshot_file, fps=fps)[:n, : real.shape[1], : real.shape[2]]
        if len(tuned) < n:
            raise ValueError(f"{oneshot_file}: {len(tuned)} frames, the real clip has {n}")
        candidates["a2v:" + exp_name + ONESHOT] = (tuned, measure_landmarks(tuned, box), identity_embeddings(tuned, face_box))
    sentence = clip_sentence(reader.clip_attrs(row.clip_id)["words"])

    def judged(frames: np.ndarray) -> dict:
        out = {"WER": math.nan, "WER_greedy": math.nan, "LSE_D": math.nan, "LSE_C": math.nan, "AV_offset": math.nan,
               "transcript": "", "transcript_greedy": ""}
        if reader_lips is not None and sentence:
            read = reader_lips.read_clip(frames, ("grid_grammar", "greedy"))
            out["transcript"], out["transcript_greedy"] = read["grid_grammar"], read["greedy"]
            out["WER"] = 100.0 * word_error_rate([sentence], [out["transcript"]])
            out["WER_greedy"] = 100.0 * word_error_rate([sentence], [out["transcript_greedy"]])
        if scorer is not None:
            s = scorer.score(frames, mfcc)
            out.update(LSE_D=s["lse_d"], LSE_C=s["lse_c"], AV_offset=s["offset"])
        return out

    base = {"dataset": row.dataset, "speaker": row.speaker, "clip_id": row.clip_id, "split": row.split, "sentence": sentence}
    rows, ears = [], []
    for method, (frames, lm, emb) in candidates.items():
        m = clip_metrics(real, frames, real_lm, lm, real_emb, emb, fps, ev)
        rows.append({"method": _method(method, row.split), **base, **m, **judged(frames)})
        ears += [{"method": _method(method, row.split), "speaker": row.speaker, "clip_id": row.clip_id, "frame": i, "ear": float(e)}
                 for i, e in enumerate(eye_aspect_ratio(lm).mean(axis=1))]
    real_ear = eye_aspect_ratio(real_lm).mean(axis=1)
    ears += [{"method": _method("real", row.split), "speaker": row.speaker, "clip_id": row.clip_id, "frame": i, "ear": float(e)}
             for i, e in enumerate(real_ear)]
    rows.append({"method": _method("real", row.split), **base,
                 **{c: math.nan for c in METRIC_COLUMNS},
                 "CPBD": cpbd_video(real),
                 "blinks_per_s": blinks_per_second(real_ear, fps, ev["blink_ear_threshold"], ev["blink_min_frames"]),
                 **judged(real)})
    return {"rows": rows, "ears": ears, "delivery": delivered}
