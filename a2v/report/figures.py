"""The report's figures, drawn with matplotlib (Agg) and returned as PNG bytes.

Every function takes plain tables (pandas) and returns ``bytes`` of a PNG, so the HTML embeds
them as data URIs and the report stays one self-contained file.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from a2v.metrics.blinks import detect_blinks  # noqa: E402

METHOD_COLOURS = {"real": "#222222", "static baseline": "#999999"}


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def ear_figure(ear: pd.DataFrame, speaker: str, clip_id: str, threshold: float, min_frames: int, fps: float = 25.0) -> bytes:
    """EAR over time of every method for one clip, the blink threshold, and the detected blinks shaded.

    Args:
        ear: rows ``method, speaker, clip_id, frame, ear`` (``metrics/ear.csv``).
        threshold, min_frames: the blink detector's settings (:func:`a2v.metrics.blinks.detect_blinks`).
    """
    clip = ear[(ear.speaker == speaker) & (ear.clip_id == clip_id)]
    methods = list(dict.fromkeys(clip.method))
    fig, axes = plt.subplots(len(methods), 1, figsize=(8, 1.5 * len(methods) + 0.6), sharex=True, squeeze=False, constrained_layout=True)
    for ax, method in zip(axes[:, 0], methods):
        series = clip[clip.method == method].sort_values("frame")
        t = series.frame.to_numpy() / fps
        values = series.ear.to_numpy()
        ax.plot(t, values, color=METHOD_COLOURS.get(method, "#1f77b4"), lw=1.2)
        ax.axhline(threshold, color="#d62728", lw=0.8, ls="--")
        blinks = detect_blinks(values, threshold, min_frames)
        for a, b in blinks:
            ax.axvspan(a / fps, b / fps, color="#ff9896", alpha=0.6)
        ax.set_ylabel("EAR")
        ax.set_title(f"{method}: {len(blinks)} blink(s)", fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("time (s)")
    fig.suptitle(f"{speaker}/{clip_id}: eye aspect ratio, threshold {threshold}, min {min_frames} frames", fontsize=10)
    return _png(fig)


def loss_figure(losses: dict[str, pd.DataFrame], columns: dict[str, list[str]]) -> bytes:
    """Loss terms per phase (one panel per phase; log scale when all positive).

    Args:
        losses: phase label → its ``losses.csv``.
        columns: phase label → the loss columns of that table (the recipe's step's names, as the
            checkpoint records them; e.g. MAN's ``g_*`` solid, ``d_*`` dashed).
    """
    fig, axes = plt.subplots(1, len(losses), figsize=(5 * len(losses), 3.6), squeeze=False, constrained_layout=True)
    for ax, (name, df) in zip(axes[0], losses.items()):
        cols = [c for c in columns.get(name, []) if c in df.columns]
        for col in cols:
            ax.plot(df.step, df[col], lw=1.1, ls="--" if col.startswith("d_") else "-", label=col)
        values = df[cols].to_numpy(dtype=float)
        if values.size and np.nanmin(values) > 0:
            ax.set_yscale("log")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("step")
        ax.legend(fontsize=7, ncol=2, loc="best", framealpha=0.7)
    return _png(fig)


def values_figure(losses: dict[str, pd.DataFrame], columns: dict[str, list[str]]) -> bytes:
    """Values a recipe logs beside its losses (MAN: ρ of the first MAN block per modality) over the
    whole training, phases in sequence.

    Args:
        losses: phase label → its ``losses.csv``; columns: phase label → the value columns.
    """
    fig, ax = plt.subplots(figsize=(8, 3))
    offset = 0
    for name, df in losses.items():
        cols = [c for c in columns.get(name, []) if c in df.columns]
        for k, col in enumerate(cols):
            ax.plot(df.step + offset, df[col], color=f"C{k}", lw=1.3, label=col if offset == 0 else None)
        if offset:
            ax.axvline(offset, color="#999999", lw=0.8, ls=":")
        ax.text(offset, 1.0, f" {name}", fontsize=8, va="top", transform=ax.get_xaxis_transform())
        offset += int(df.step.max())
    ax.set_xlabel("step (phases in sequence)")
    ax.legend(fontsize=8, ncol=5)
    return _png(fig)


def phoneme_figure(selection: dict) -> bytes:
    """CRAN Fig. 3 for the experiment: the training clips' phoneme histogram before (a) and after
    (b) sample selection (CRAN §3.3, Algorithm 1), each with its uniform level and distance.

    Args:
        selection: the select stage's ``selection.json`` (:func:`a2v.stages.select.selection_summary`):
            ``phonemes``, ``histogram_before``, ``histogram_after`` (counts), ``support``,
            ``distance_before``, ``distance_after``, ``n_candidates``, ``n_selected``, ``algorithm1``.

    Returns:
        PNG bytes. Phonemes of the support only, ordered by their count before selection (most
        frequent first); the dashed line is the count each would have under the uniform
        distribution of the same total.
    """
    index = {p: i for i, p in enumerate(selection["phonemes"])}
    shown = sorted(selection["support"], key=lambda p: -selection["histogram_before"][index[p]])
    panels = [("(a) before", selection["histogram_before"], selection["distance_before"], selection["n_candidates"]),
              ("(b) after", selection["histogram_after"], selection["distance_after"], selection["n_selected"])]
    fig, axes = plt.subplots(2, 1, figsize=(max(6.0, 0.28 * len(shown) + 1.5), 5.2), constrained_layout=True)
    for ax, (label, hist, dist, clips) in zip(axes, panels):
        counts = np.array([hist[index[p]] for p in shown], dtype=np.int64)
        ax.bar(np.arange(len(shown)), counts, color="#1f77b4" if label.startswith("(a)") else "#2ca02c")
        if len(shown) and counts.sum():
            ax.axhline(counts.sum() / len(shown), color="#d62728", lw=0.9, ls="--", label="uniform, same total")
            ax.legend(fontsize=7, loc="upper right")
        ax.set_xticks(np.arange(len(shown)), shown, rotation=90, fontsize=7)
        ax.set_ylabel("occurrences")
        text = "NA" if dist is None else f"{dist:.4f}"
        ax.set_title(f"{label} selection: {clips} clips, {int(counts.sum())} phonemes; distance to uniform {text}",
                     fontsize=9, loc="left")
    fig.suptitle(f"Training clips' phoneme histogram (CRAN Algorithm 1: {selection['algorithm1']})", fontsize=10)
    return _png(fig)
