"""The model comparison: every experiment of one dataset in one table and one page.

``results/model_comparison.csv`` holds, for the experiments the ``comparison`` config section
names (all on one dataset), each model's rows of its ``metrics.csv`` (``a2v:<exp>``, ``… (unseen)``,
``… one-shot (unseen)``) beside one copy of the ``static baseline``, ``real`` and published rows,
with a column ``experiment``. ``results/model_comparison_paired.csv`` gives, for every model row
and for ``real``, the paired per-clip differences against the ``static baseline`` of the same split
(:mod:`a2v.metrics.paired`: mean difference, its standard error, the improvement in standard
errors and whether it exceeds two). ``results/model_comparison.html`` shows both tables and the same
test clips side by side for every model: ``real | <model 1> | … | static``.

Honest by construction (the evaluate stage's one scoring path): the comparison refuses
experiments whose test clips differ (it names the clips), and it checks that their ``static
baseline`` and ``real`` rows agree clip by clip — same crops and same judges give the same numbers —
else it names the experiment and metric that disagree.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import numpy as np
import pandas as pd

from a2v.features.shard import open_shards
from a2v.io.audio import load_audio
from a2v.io.video import read_frames
from a2v.metrics.paired import paired_differences
from a2v.report.html import CSS, _data_uri, metrics_table
from a2v.stages.common import get_logger, write_table
from a2v.stages.evaluate import METRIC_COLUMNS, UNSEEN, comparability
from a2v.stages.report import _mp4_bytes, side_by_side

BASELINE = "static baseline"
SHARED = (BASELINE, "real")
"""Rows every experiment of a dataset has alike (one copy goes in the table)."""


def _read(exp_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    metrics = pd.read_csv(exp_dir / "metrics.csv")
    per_clip = pd.read_csv(exp_dir / "metrics" / "per_clip.csv", dtype={"clip_id": str, "speaker": str})
    listing = pd.read_csv(exp_dir / "videos" / "videos.tsv", sep="\t", dtype={"clip_id": str, "speaker": str})
    if "variant" in listing:
        listing = listing[listing["variant"].astype(object).fillna("") == ""]
    return metrics, per_clip, listing


def check_same_test_clips(per_clips: dict[str, pd.DataFrame], tol: float = 1e-6) -> None:
    """Raise ``ValueError`` unless every experiment scored the same test clips and its static
    baseline and real rows agree clip by clip (to ``tol``) with the first experiment's."""
    names = list(per_clips)
    key = ["method", "speaker", "clip_id"]
    ref_name, ref = names[0], per_clips[names[0]]
    ref_clips = set(map(tuple, ref.loc[ref.method.isin(["real", "real" + UNSEEN]), ["speaker", "clip_id"]].values))
    for name in names[1:]:
        pc = per_clips[name]
        clips = set(map(tuple, pc.loc[pc.method.isin(["real", "real" + UNSEEN]), ["speaker", "clip_id"]].values))
        if clips != ref_clips:
            raise ValueError(f"experiments {ref_name} and {name} scored different test clips: only in {ref_name} "
                             f"{sorted(ref_clips - clips)}, only in {name} {sorted(clips - ref_clips)}")
        shared = [m for base in SHARED for m in (base, base + UNSEEN)]
        a = ref[ref.method.isin(shared)].set_index(key).sort_index()
        b = pc[pc.method.isin(shared)].set_index(key).sort_index()
        for col in METRIC_COLUMNS:
            if col in a and col in b:
                x, y = a[col].to_numpy(float), b[col].to_numpy(float)
                bad = ~((np.isnan(x) & np.isnan(y)) | (np.abs(x - y) <= tol))
                if bad.any():
                    where = a.index[np.flatnonzero(bad)[0]]
                    raise ValueError(f"{col} of {where} differs between {ref_name} ({x[bad][0]:.6g}) and {name} ({y[bad][0]:.6g}): "
                                     "not one scoring path (other judges, crops or settings?)")


def comparison_table(metrics: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Every experiment's model rows, then one copy of the shared and published rows (from the first)."""
    first = next(iter(metrics.values()))
    rows = []
    for name, table in metrics.items():
        ours = table[table.method.astype(str).str.startswith("a2v:")].copy()
        ours.insert(0, "experiment", name)
        rows.append(ours)
    shared = first[~first.method.astype(str).str.startswith("a2v:")].copy()
    shared.insert(0, "experiment", "")
    out = pd.concat(rows + [shared], ignore_index=True)
    unseen = out.method.astype(str).str.endswith(UNSEEN)
    published = out["kind"].astype(str) == "published"
    order = np.where(published, 2, np.where(unseen, 1, 0))
    return out.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)


LIP_METRICS = ["WER", "WER_greedy", "LSE_D", "LSE_C", "LMD"]
"""The metrics that judge lip motion: a model beats the static frame when it wins on all of them."""


def paired_table(per_clips: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Paired differences against the static baseline of the same split, for every experiment's model
    rows (``a2v:…``, one per split and variant) and once for ``real`` (the first experiment's).

    Columns: ``experiment``, ``method``, ``baseline`` and :func:`a2v.metrics.paired.paired_differences`'s.
    """
    parts = []
    for i, (name, pc) in enumerate(per_clips.items()):
        methods = [m for m in pc["method"].astype(str).unique() if m.startswith("a2v:") or (i == 0 and m.startswith("real"))]
        for m in methods:
            base = BASELINE + (UNSEEN if m.endswith(UNSEEN) else "")
            if not (pc["method"] == base).any():
                continue
            t = paired_differences(pc, m, base, METRIC_COLUMNS)
            t.insert(0, "baseline", base)
            t.insert(0, "method", m)
            t.insert(0, "experiment", name if m.startswith("a2v:") else "")
            parts.append(t)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _paired_html(paired: pd.DataFrame) -> str:
    """Improvement over the static baseline in standard errors, one row per method, one cell per metric."""
    esc = html.escape
    cols = [c for c in METRIC_COLUMNS if c in set(paired["metric"])]
    head = "".join(f"<th>{esc(c)}</th>" for c in ["method", "n", *cols])
    body = []
    for method, rows in paired.groupby("method", sort=False):
        by = rows.set_index("metric")
        cells = []
        for c in cols:
            r = by.loc[c]
            z = "" if pd.isna(r.improvement_se) else f" ({r.improvement_se:+.1f} SE)"
            mark = " ✓" if r.beats else ""
            cells.append(f"<td>{r.diff_mean:+.3g} ± {r.diff_se:.2g}{esc(z)}{mark}</td>")
        body.append(f"<tr><td>{esc(str(method))}</td><td>{int(by['n'].max())}</td>{''.join(cells)}</tr>")
    return f"<div class='wide'><table><tr>{head}</tr>{''.join(body)}</table></div>"


def run(config: dict, experiments: list[str], metrics: list[str | Path], shards: list[str | Path], out_csv: str | Path,
        out_html: str | Path, n_videos: int = 3, log_file=None, out_paired: str | Path | None = None) -> Path:
    """Write ``model_comparison.csv``, ``model_comparison_paired.csv`` and ``model_comparison.html``.
    Returns the CSV path.

    Args:
        config: the merged config (``evaluate.reference_metrics`` for the comparability notes).
        experiments: the experiments to compare (their ``results/<exp>/metrics.csv``,
            ``metrics/per_clip.csv`` and ``videos/videos.tsv`` must exist), all on one dataset.
        metrics: each experiment's ``metrics.csv`` (its folder holds the rest), in order.
        shards: the dataset's feature shards holding the test clips (the real frames shown).
        n_videos: test clips shown (one of an unseen speaker among them when there is one).
        out_paired: the paired differences' CSV (default: ``<out_csv stem>_paired.csv`` beside it).

    Raises:
        ValueError: fewer than one experiment, test clips that differ, shared rows that disagree.
        FileNotFoundError: an experiment's outputs are missing.
    """
    log = get_logger("compare", log_file)
    if not experiments or len(experiments) != len(metrics):
        raise ValueError(f"need one metrics.csv per experiment, got {len(experiments)} experiments and {len(metrics)} files")
    read = {}
    for name, path in zip(experiments, metrics):
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: experiment {name} has not been evaluated")
        read[name] = _read(Path(path).parent)
    check_same_test_clips({n: r[1] for n, r in read.items()})
    table = comparison_table({n: r[0] for n, r in read.items()})
    out_csv = write_table(table, Path(out_csv), sep=",")
    log.info("model comparison over %d experiments:\n%s", len(experiments),
             table[["method", "kind"] + METRIC_COLUMNS].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    paired = paired_table({n: r[1] for n, r in read.items()})
    out_paired = Path(out_paired) if out_paired else Path(out_csv).with_name(f"{Path(out_csv).stem}_paired.csv")
    write_table(paired, out_paired, sep=",")
    if len(paired):
        lips = paired[paired["metric"].isin(LIP_METRICS)]
        winners = [m for m, r in lips.groupby("method", sort=False) if m.startswith("a2v:") and r["beats"].sum() == len(LIP_METRICS)]
        log.info("paired differences against the static baseline, improvement in standard errors (positive: better):\n%s",
                 lips.pivot(index="method", columns="metric", values="improvement_se")
                 .reindex(index=lips["method"].unique(), columns=LIP_METRICS).to_string(float_format=lambda v: f"{v:+.2f}"))
        log.info("models beating the static baseline by more than 2 SE on %s: %s", ", ".join(LIP_METRICS), ", ".join(winners) or "none")
    else:
        log.info("paired differences: NA (no static baseline rows to pair with)")

    # the same clips for every model, side by side
    listings = {n: r[2] for n, r in read.items()}
    first = listings[experiments[0]]
    unseen = first[first["split"] == "test_unseen"]
    shown = pd.concat([first.drop(unseen.index).head(n_videos - (1 if len(unseen) else 0)), unseen.head(1)])
    readers = open_shards(shards)
    videos = []
    try:
        for row in shown.itertuples(index=False):
            reader = next(r for (ds, spk), r in readers.items() if spk == row.speaker)
            real = reader.read(row.clip_id, "frames")
            fps, sr = float(reader.attrs["fps"]), int(reader.attrs["sample_rate"])
            panels = [real]
            for name in experiments:
                hit = listings[name][(listings[name].speaker == row.speaker) & (listings[name].clip_id == row.clip_id)]
                panels.append(read_frames(hit.iloc[0]["frames"], fps=fps)[:, : real.shape[1], : real.shape[2]])
            panels.append(np.repeat(real[:1], len(real), axis=0))
            audio = load_audio(row.video, sr, min_rms_dbfs=None)
            videos.append((f"{row.speaker}/{row.clip_id} ({row.split})", _data_uri("video/mp4", _mp4_bytes(side_by_side(panels), audio, fps, sr))))
    finally:
        for r in readers.values():
            r.close()
    incomparable = {m: e["reason"] for m, e in comparability(config["evaluate"]["reference_metrics"]).items() if not e["comparable"]}
    esc = html.escape
    order = " | ".join(["real", *experiments, "static"])
    n_test = int((read[experiments[0]][1].method == "real").sum())
    n_unseen = int((read[experiments[0]][1].method == "real" + UNSEEN).sum())
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>a2v model comparison</title>",
             f"<style>{CSS}</style></head><body><h1>a2v model comparison</h1>",
             f"<p class='note'>{len(experiments)} experiments on the same {n_test} test clips"
             f"{f' and {n_unseen} clips of unseen speakers' if n_unseen else ''}, one scoring path "
             "(lossless generated frames against the shard's crops; same judges). Mean ± sample std (n clips).</p>",
             metrics_table(table.drop(columns=["experiment"]), METRIC_COLUMNS, incomparable),
             "<h2>Paired differences against the static baseline</h2><p class='note'>Per test clip, method − static "
             "frame, then mean ± standard error over the clips; in brackets the improvement in standard errors "
             "(positive: better); ✓ beyond two.</p>",
             _paired_html(paired) if len(paired) else "<p class='note'>NA: no static baseline rows.</p>",
             f"<h2>The same test clips: {esc(order)}</h2><div class='clips'>"]
    for title, uri in videos:
        parts.append(f"<div class='clip'><p><b>{esc(title)}</b></p><video controls preload='metadata' src='{uri}'></video></div>")
    parts.append("</div></body></html>")
    out_html = Path(out_html)
    out_html.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_html.with_name(f".{out_html.name}.tmp")
    tmp.write_text("".join(parts), encoding="utf-8")
    os.replace(tmp, out_html)
    log.info("model comparison page: %s (%d clips, %s)", out_html, len(videos), order)
    return out_csv


__all__ = ["check_same_test_clips", "comparison_table", "paired_table", "run"]
