"""Paired differences against a baseline (a2v.metrics.paired): the figures issue 15's criterion reads."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from a2v.metrics.paired import paired_differences


def _per_clip(model: dict[str, list[float]], base: dict[str, list[float]]) -> pd.DataFrame:
    clips = [f"c{i}" for i in range(len(next(iter(model.values()))))]
    rows = [{"method": name, "speaker": "s1", "clip_id": c, **{k: v[i] for k, v in values.items()}}
            for name, values in (("a2v:m", model), ("static baseline", base)) for i, c in enumerate(clips)]
    return pd.DataFrame(rows)


def test_improvement_is_the_paired_t_statistic_signed_by_the_metric_direction():
    """z equals scipy's paired t statistic, with the sign that makes "better" positive (LSE-D lower,
    LSE-C higher); a clip with a non-finite value on either side is left out of its metric only."""
    lse_d_m, lse_d_s = [0.61, 0.70, 0.55, 0.66, 0.72], [0.80, 0.83, 0.71, 0.79, 0.90]
    lse_c_m, lse_c_s = [0.20, 0.15, 0.31, 0.12, 0.18], [0.07, 0.09, 0.05, 0.11, 0.06]
    psnr_m, psnr_s = [24.0, math.inf, 23.5, 25.1, 22.0], [24.5, 25.0, 24.0, 25.0, 23.0]
    pc = _per_clip({"LSE_D": lse_d_m, "LSE_C": lse_c_m, "PSNR": psnr_m, "blinks_per_s": [0.0] * 5},
                   {"LSE_D": lse_d_s, "LSE_C": lse_c_s, "PSNR": psnr_s, "blinks_per_s": [0.2] * 5})
    t = paired_differences(pc, "a2v:m", "static baseline", ["LSE_D", "LSE_C", "PSNR", "blinks_per_s", "WER"]).set_index("metric")
    assert list(t.index) == ["LSE_D", "LSE_C", "PSNR", "blinks_per_s"]  # WER absent: skipped
    assert t.loc["LSE_D", "improvement_se"] == pytest.approx(-stats.ttest_rel(lse_d_m, lse_d_s).statistic, rel=1e-12)
    assert t.loc["LSE_C", "improvement_se"] == pytest.approx(stats.ttest_rel(lse_c_m, lse_c_s).statistic, rel=1e-12)
    assert t.loc["LSE_D", "beats"] and t.loc["LSE_C", "beats"]
    d = np.subtract(lse_d_m, lse_d_s)
    assert t.loc["LSE_D", "diff_mean"] == pytest.approx(d.mean()) and t.loc["LSE_D", "diff_se"] == pytest.approx(stats.sem(d))
    finite = [0, 2, 3, 4]
    assert t.loc["PSNR", "n"] == 4 and t.loc["PSNR", "diff_mean"] == pytest.approx(np.mean([psnr_m[i] - psnr_s[i] for i in finite]))
    assert t.loc["PSNR", "improvement_se"] < 0 and not t.loc["PSNR", "beats"]  # worse: negative
    assert t.loc["blinks_per_s", "better"] == "" and math.isnan(t.loc["blinks_per_s", "improvement_se"])
    assert not t.loc["blinks_per_s", "beats"]


def test_equal_columns_give_no_verdict_and_missing_methods_are_named():
    pc = _per_clip({"WER": [100.0, 83.3, 100.0]}, {"WER": [100.0, 83.3, 100.0]})
    row = paired_differences(pc, "a2v:m", "static baseline", ["WER"]).iloc[0]
    assert row.diff_mean == 0 and math.isnan(row.improvement_se) and not row.beats
    with pytest.raises(ValueError, match="a2v:other"):
        paired_differences(pc, "a2v:other", "static baseline", ["WER"])
