"""Stage 9, report: ``results/<exp>/report.html``, the page a researcher opens first.

One self-contained file (:mod:`a2v.report.html`): the experiment's facts (model, phases,
perceptual backbone, the judges and their own error on real clips), the metrics table (mean ± std
(n), published rows beside), side-by-side ``real | generated | static baseline`` videos of a few
test clips with their audio, EAR curves with the detected blinks, loss curves per phase and the
values a recipe logs beside its losses (MAN: the modality weights ρ over training). What the
report says about the model comes from the checkpoint's recipe (:meth:`Recipe.facts`). The
training clips' phoneme histogram before and after selection (CRAN Fig. 3, Algorithm 1) and the
distance to uniform come from the select stage's ``selection.json``.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import a2v
from a2v.datasets.registry import lipreader_reason
from a2v.features.shard import open_shards
from a2v.io.audio import load_audio
from a2v.io.video import read_frames, write_video
from a2v.judges.lipreader import lipnet_weights
from a2v.models.lipreader import LipNetConfig
from a2v.recipes import make_recipe
from a2v.training.checkpoint import load_checkpoint
from a2v.report.figures import ear_figure, loss_figure, phoneme_figure, values_figure
from a2v.report.html import ClipVideo, Report, render
from a2v.stages.common import get_logger
from a2v.stages.evaluate import METRIC_COLUMNS, UNSEEN, comparability
from a2v.stages.select import read_selection

VIDEO_HEIGHT = 192
"""Side-by-side videos are scaled up (nearest neighbour) to at least this height in pixels."""


def side_by_side(panels: list[np.ndarray], min_height: int = VIDEO_HEIGHT) -> np.ndarray:
    """``[(T, S, S, 3) uint8, …]`` → ``(T', k·S, n·k·S, 3)`` uint8, T' the shortest length, k the integer upscale."""
    t = min(len(p) for p in panels)
    k = max(1, -(-min_height // panels[0].shape[1]))
    row = np.concatenate([p[:t] for p in panels], axis=2)
    return row.repeat(k, axis=1).repeat(k, axis=2)


def _mp4_bytes(frames: np.ndarray, audio: np.ndarray | None, fps: float, sr: int) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = write_video(Path(tmp) / "clip.mp4", frames, fps, audio, sr)
        return path.read_bytes()


def _judge_fact(path: str | Path | None, kind: str) -> str:
    if not path:
        return "none: its metrics are NA"
    state = torch.load(path, map_location="cpu", weights_only=True)
    clips = len((state.get("identity") or {}).get("train_clips", []))
    extra = ""
    if "train_wer" in state:
        found = lipnet_weights(state)
        decoder = (found[0] if found else {}).get("decoder", LipNetConfig.decoder)  # as LipReader.load reads it
        extra = f", {decoder} decoding, WER {state['train_wer']:.1f} % on its own training clips"
    if "train_offset_share" in state:
        extra = f", best offset within ±1 frame on {100 * state['train_offset_share']:.0f} % of its training clips"
    return f"{kind} trained by the pipeline on {clips} real non-test clips, {state.get('step')} steps{extra} ({path})"


def _scoring_fact(delivery_csv: Path) -> str:
    text = ("every row before lossy encoding: generated frames from their lossless FFV1 copy, the static baseline "
            "and the real clip from the shard's aligned crops, against the shard's crops")
    if delivery_csv.is_file():
        d = pd.read_csv(delivery_csv)
        if len(d):
            text += (f"; the delivered mp4 (H.264 yuv420p, crf 18) differs from the scored frames by SSIM "
                     f"{d['SSIM'].mean():.4f} / PSNR {d['PSNR'].mean():.2f} dB (mean of {len(d)} clips)")
    return text


def _selection_fact(selection: dict) -> str:
    """One line for the facts: what Algorithm 1 kept and the distance to uniform before → after."""
    def fmt(d):
        return "NA" if d is None else f"{d:.4f}"

    text = (f"{selection['algorithm1']}: {selection['n_selected']} of {selection['n_candidates']} candidate training clips; "
            f"phoneme distance to uniform {fmt(selection['distance_before'])} before → {fmt(selection['distance_after'])} after "
            f"(total variation over the {len(selection['support'])} phonemes of the candidates)")
    if selection.get("draws"):
        text += f"; n ~ U({selection['n_min']}, {selection['n_max']}), k = {selection['k']} draws, seed {selection['seed']}"
    return text


def run(config: dict, exp: dict, metrics: str | Path, per_clip: str | Path, ear: str | Path, videos: str | Path,
        shards: list[str | Path], checkpoints: list[str | Path], out_html: str | Path,
        lipreader: str | Path | None = None, syncnet: str | Path | None = None, n_videos: int = 3, log_file=None,
        selection: str | Path | None = None) -> Path:
    """Write the report. Returns its path.

    Args:
        metrics, per_clip, ear: the evaluate stage's ``metrics.csv``, ``metrics/per_clip.csv``, ``metrics/ear.csv``.
        videos: the generate stage's ``videos.tsv``.
        shards: the dataset's feature shards (real frames).
        checkpoints: each phase's ``checkpoint.pt``, in order (their folders hold ``losses.csv``).
        lipreader, syncnet: the judges' checkpoints, if any.
        n_videos: test clips shown as videos and EAR plots.
        selection: the select stage's ``selection.json`` (phoneme histograms before/after CRAN
            Algorithm 1, distances); None: no such figure or fact.
    """
    log = get_logger("report", log_file)
    ev = exp["evaluate"]
    table = pd.read_csv(metrics)
    clips = pd.read_csv(per_clip, dtype={"clip_id": str, "speaker": str})
    ears = pd.read_csv(ear, dtype={"clip_id": str, "speaker": str})
    listing = pd.read_csv(videos, sep="\t", dtype={"clip_id": str, "speaker": str})
    states = [load_checkpoint(c) for c in checkpoints]
    chosen = read_selection(selection) if selection else None
    trained = states[-1]["config"]  # the model as it was trained
    recipe = make_recipe(trained["model_type"], trained.get("model"), trained.get("training"), trained.get("phases") or [])
    facts = [
        ("experiment", f"{exp['name']} ({exp['model_type']} on {exp['dataset']})"),
        *recipe.facts(states),
        ("phases", "; ".join(f"{p.get('name')}: {p.get('steps') or str(p.get('epochs')) + ' epochs'}" for p in exp["phases"])),
        ("lip-reader (WER)", lipreader_reason(exp["dataset"], config["datasets"][exp["dataset"]]) or _judge_fact(lipreader, "LipNet")),
        ("SyncNet (LSE-C/D)", _judge_fact(syncnet, "SyncNet")),
        ("test clips", f"{int((clips.method == 'real').sum())} of the training speakers"
                       + (f", {int((clips.method == 'real' + UNSEEN).sum())} of unseen speakers "
                          f"({', '.join(sorted(clips.loc[clips.method == 'real' + UNSEEN, 'speaker'].unique()))})"
                          if (clips.method == "real" + UNSEEN).any() else ", no unseen speaker")),
        ("scoring path", _scoring_fact(Path(per_clip).parent / "delivery.csv")),
        *([("phoneme-balanced selection (CRAN Alg. 1)", _selection_fact(chosen))] if chosen else []),
        ("written", f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC by a2v {a2v.__version__}"),
    ]
    warnings = recipe.warnings(states)
    notes = [
        "Means over test clips ± sample standard deviation (n = clips with a value). WER in % (the pipeline's "
        "LipNet; its decoder is in the facts above); LSE-D ↓ / LSE-C ↑ by the pipeline's SyncNet over ±15-frame offsets; AV_offset in frames.",
        "'real' rows score the real test clips themselves: the lip-reader's and SyncNet's own error on real video, "
        "the bound a generator can reach with these judges. Published rows are the papers' numbers on their data.",
        "WER reads through GRID's sentence grammar (a blind reader already gets about 80 %, not 100 %); WER_greedy "
        "is the same network's free CTC reading.",
        "Rows marked (unseen) are scored on speakers that no model or judge trained on: their 'real (unseen)' row "
        "is the judges' own error on new speakers (judges trained on one speaker read a new one near chance).",
    ]
    if "variant" in listing:  # the one-shot videos are scored (rows "… one-shot (unseen)"), not shown
        if (listing["variant"].astype(object).fillna("") == "oneshot").any():
            notes.append("Rows '… one-shot (unseen)': the model fine-tuned on each unseen clip's reference frame alone "
                         "before generating it (its training.finetune_steps), the weights restored between clips.")
        listing = listing[listing["variant"].astype(object).fillna("") == ""]
    # a few test clips, and one of an unseen speaker when there is one
    unseen = listing[listing["split"] == "test_unseen"] if "split" in listing else listing.iloc[:0]
    shown = pd.concat([listing.drop(unseen.index).head(n_videos - (1 if len(unseen) else 0)), unseen.head(1)])
    readers = open_shards(shards)
    clip_videos, ear_pngs = [], []
    try:
        for row in shown.itertuples(index=False):
            reader = next(r for (ds, spk), r in readers.items() if spk == row.speaker)
            real = reader.read(row.clip_id, "frames")
            fps, sr = float(reader.attrs["fps"]), int(reader.attrs["sample_rate"])
            fake = read_frames(row.video, fps=fps)
            static = np.repeat(real[:1], len(real), axis=0)
            audio = load_audio(row.video, sr, min_rms_dbfs=None)
            ours = clips[(clips.speaker == row.speaker) & (clips.clip_id == row.clip_id) & clips.method.str.startswith("a2v:")]
            caption = ""
            if not ours.empty:
                o = ours.iloc[0]
                caption = f"said: “{o.get('sentence', '')}”; lip-read from generated: “{'' if pd.isna(o.get('transcript')) else o.get('transcript')}”"
            clip_videos.append(ClipVideo(f"{row.speaker}/{row.clip_id}", _mp4_bytes(side_by_side([real, fake, static]), audio, fps, sr), caption))
            ear_pngs.append((f"{row.speaker}/{row.clip_id}", ear_figure(ears, row.speaker, row.clip_id, ev["blink_ear_threshold"], ev["blink_min_frames"], fps)))
    finally:
        for r in readers.values():
            r.close()
    losses, loss_cols, value_cols = {}, {}, {}
    for k, (ck, state) in enumerate(zip(checkpoints, states), start=1):
        csv = Path(ck).parent / "losses.csv"
        if csv.exists():
            label = f"phase {k}: {state.get('phase_name', '')}"
            losses[label] = pd.read_csv(csv)
            loss_cols[label], value_cols[label] = state.get("loss_columns", []), state.get("value_columns", [])
    report = Report(
        title=f"a2v report — {exp['name']}",
        facts=facts,
        metrics=table,
        metric_columns=METRIC_COLUMNS,
        videos=clip_videos,
        ear_pngs=ear_pngs,
        loss_png=loss_figure(losses, loss_cols) if losses else None,
        values_png=values_figure(losses, value_cols) if any(value_cols.values()) else None,
        values_title=recipe.values_title,
        phoneme_png=phoneme_figure(chosen) if chosen and chosen["support"] else None,  # none without transcripts
        notes=notes,
        warnings=warnings,
        incomparable={m: e["reason"] for m, e in comparability(ev["reference_metrics"]).items() if not e["comparable"]},
    )
    out_html = Path(out_html)
    out_html.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_html.with_name(f".{out_html.name}.tmp")
    tmp.write_text(render(report), encoding="utf-8")
    os.replace(tmp, out_html)
    log.info("report: %s (%.1f MiB, %d videos)", out_html, out_html.stat().st_size / 2**20, len(clip_videos))
    return out_html
