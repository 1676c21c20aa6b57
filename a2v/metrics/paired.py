"""Paired per-clip differences of a model against a baseline on the same test clips.

Two methods scored on the same clips are compared clip by clip: ``d_i = model_i − baseline_i``
for every clip ``i`` where both values are finite, then the mean ``d̄``, the standard error
``SE = s_d / √n`` (``s_d`` the sample standard deviation, ddof 1) and the improvement in
standard errors ``z = ±d̄ / SE``, signed so that a positive ``z`` means the model is better (the
metric's direction: ``LOWER_IS_BETTER`` / ``HIGHER_IS_BETTER``). A model *beats* the baseline on
a metric when ``z > 2``: its per-clip advantage exceeds two standard errors of the paired
differences (issue 15's criterion; about a one-sided 2.3 % level for a normal mean).

Pairing removes what the clips share (a hard sentence is hard for both methods), so the SE is
that of the differences, not of either column. WER is paired per clip: on GRID every sentence
has six words, so the mean of per-clip WERs equals the corpus WER of the table.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

LOWER_IS_BETTER = frozenset({"LMD", "WER", "WER_greedy", "LSE_D", "ACD_C", "ACD_E"})
HIGHER_IS_BETTER = frozenset({"SSIM", "PSNR", "CPBD", "LSE_C"})
"""Metrics with a direction; others (blinks/s, AV offset) get differences but no verdict."""
KEY = ("speaker", "clip_id")


def paired_differences(per_clip: pd.DataFrame, method: str, baseline: str, metrics: list[str],
                       threshold_se: float = 2.0) -> pd.DataFrame:
    """Paired differences ``method − baseline`` per metric over their common clips.

    Args:
        per_clip: the evaluate stage's ``per_clip.csv`` rows (columns ``method``, ``speaker``,
            ``clip_id`` and the metrics), both methods in it.
        method, baseline: the two ``method`` values compared.
        metrics: the metric columns (missing columns are skipped).
        threshold_se: the margin, in standard errors, that counts as beating the baseline.

    Returns:
        One row per metric: ``metric``, ``n`` (clips with both values finite), ``model_mean``,
        ``baseline_mean``, ``diff_mean`` (model − baseline), ``diff_se``, ``better``
        (``lower``/``higher``/empty), ``improvement_se`` (``z``; NaN without a direction, ±inf for a
        constant non-zero difference), ``beats`` (``z > threshold_se``; False without a direction).

    Raises:
        ValueError: a method has no rows, or a clip appears twice for one method.
    """
    frames = {}
    for name in (method, baseline):
        rows = per_clip[per_clip["method"] == name]
        if rows.empty:
            raise ValueError(f"no per-clip rows of {name!r} (methods: {sorted(per_clip['method'].unique())})")
        if rows.duplicated(list(KEY)).any():
            raise ValueError(f"{name!r} has several rows for clip {rows[rows.duplicated(list(KEY))].iloc[0][list(KEY)].tolist()}")
        frames[name] = rows.set_index(list(KEY))
    model, base = frames[method], frames[baseline]
    common = model.index.intersection(base.index)
    out = []
    for col in metrics:
        if col not in model or col not in base:
            continue
        x = model.loc[common, col].to_numpy(float)
        y = base.loc[common, col].to_numpy(float)
        ok = np.isfinite(x) & np.isfinite(y)
        d = x[ok] - y[ok]
        n = int(ok.sum())
        mean = float(d.mean()) if n else math.nan
        se = float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
        better = "lower" if col in LOWER_IS_BETTER else "higher" if col in HIGHER_IS_BETTER else ""
        z = math.nan
        if better and n > 1:
            gain = (0.0 - mean) if better == "lower" else mean  # 0.0 − 0.0 is +0.0
            z = gain / se if se > 0 else (math.copysign(math.inf, gain) if gain else math.nan)
        out.append({"metric": col, "n": n, "model_mean": float(x[ok].mean()) if n else math.nan,
                    "baseline_mean": float(y[ok].mean()) if n else math.nan, "diff_mean": mean, "diff_se": se,
                    "better": better, "improvement_se": z, "beats": bool(better and z > threshold_se)})
    return pd.DataFrame(out)


__all__ = ["HIGHER_IS_BETTER", "LOWER_IS_BETTER", "paired_differences"]
