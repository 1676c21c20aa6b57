"""Phonemes from GRID words (CMU dictionary) and Algorithm 1 (CRAN §3.3, supplement)."""

from __future__ import annotations

import os
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from a2v.selection.balance import distance_to_uniform, phoneme_rank, rank_clips, select_balanced
from a2v.selection.phonemes import phoneme_histogram, phoneme_inventory, words_to_phonemes
from a2v.datasets.grid import words_from_code
from a2v.errors import A2VError

GRID_DATA = Path(os.environ.get("A2V_GRID_DATA", "/work/shared/data/grid"))
"""The full GRID corpus (Zenodo layout: sN/*.mpg, alignments/sN/*.align), where a machine has it."""


def test_inventory_is_the_39_cmu_phonemes():
    inv = phoneme_inventory()
    assert len(inv) == 39 and "AA" in inv and "ZH" in inv


def test_grid_sentence_phonemes():
    ph = words_to_phonemes(words_from_code("bbaf2n"))  # bin blue at f two now
    assert ph == ["B", "IH", "N", "B", "L", "UW", "AE", "T", "EH", "F", "T", "UW", "N", "AW"]
    hist = phoneme_histogram(ph)
    inv = phoneme_inventory()
    assert hist[inv.index("UW")] == 2 and hist.sum() == 14
    with pytest.raises(A2VError, match="qzxv"):
        words_to_phonemes(["qzxv"])


def test_phonemes_ranked_rarest_first_and_clips_lexicographically_by_their_distribution():
    """Algorithm 1 lines 1–2: R_ph = phonemes by overall count, ascending (ties: column order);
    clips sorted by their own distribution read in R_ph order, larger share first."""
    # columns A, B, C; overall counts A 5, B 3, C 1 -> R_ph = C, B, A
    h = np.array([[5, 0, 0],   # shares (C, B, A) = (0, 0, 1)
                  [0, 2, 0],   # (0, 1, 0)
                  [0, 1, 1],   # (1/2, 1/2, 0): the largest share of the rarest phoneme
                  [0, 0, 0]])  # no phoneme: last
    assert phoneme_rank(h).tolist() == [2, 1, 0]
    assert rank_clips(h).tolist() == [2, 1, 0, 3]
    # shares, not counts: a long clip with more C but a smaller share of it ranks lower
    h2 = np.array([[0, 6, 2], [0, 1, 1], [9, 0, 0]])  # C share 1/4 vs 1/2; overall A 9, B 7, C 3
    assert rank_clips(h2).tolist() == [1, 0, 2]
    # ties: equal overall counts keep column order; equal clips keep input order
    assert phoneme_rank(np.array([[1, 1, 2]])).tolist() == [0, 1, 2]
    assert rank_clips(np.array([[1, 1], [1, 1], [0, 2]])).tolist() == [0, 1, 2]


def test_distance_known_answers():
    support = np.array([0, 1, 2, 3])
    assert distance_to_uniform(np.array([1, 1, 1, 1]), support) == 0.0
    assert distance_to_uniform(np.array([4, 0, 0, 0]), support) == pytest.approx(0.75)
    assert distance_to_uniform(np.array([0, 0, 0, 0]), support) == pytest.approx(0.75)  # no phoneme: as far as one
    assert distance_to_uniform(np.array([4, 0, 7]), np.array([0, 1])) == pytest.approx(0.5)  # support only
    with pytest.raises(ValueError, match="empty support"):
        distance_to_uniform(np.array([1, 2]), np.array([], int))


def test_algorithm1_synthetic_known_answer():
    """A histogram whose answer is worked out by hand (phonemes A, B, C).

    Overall counts A 8, B 4, C 2, so R_ph = (C, B, A). Clip shares read as (C, B, A):
    c0 (0, 0, 1), c1 (0, 1/2, 1/2), c2 (1/3, 0, 2/3), c3 (1/3, 2/3, 0) -> F_N sorted = c3, c2, c1, c0
    (c3 and c2 tie on C and c3 has more B). Top-n histograms (A, B, C) and total-variation
    distances to uniform (1/3 each):
    n=1 (0, 2, 1) 1/3;  n=2 (2, 2, 2) 0;  n=3 (4, 4, 2) 2/15;  n=4 (8, 4, 2) 5/21.
    So F_n = {c3, c2} at distance 0, against 5/21 for all clips. (a2v's former score, the mean
    overall occurrence rate, ranked c3, c1, c2, c0 and could reach no better than 2/15.)
    """
    h = np.array([[4, 0, 0], [2, 2, 0], [2, 0, 1], [0, 2, 1]])
    assert phoneme_rank(h).tolist() == [2, 1, 0] and rank_clips(h).tolist() == [3, 2, 1, 0]
    result = select_balanced(h, 1, 4, k=50, seed=0)
    assert {m for m, _ in result.draws} == {1, 2, 3, 4}  # every n was drawn: the best is the hand-computed one
    expected = {1: Fraction(1, 3), 2: Fraction(0), 3: Fraction(2, 15), 4: Fraction(5, 21)}
    assert all(d == pytest.approx(float(expected[m]), abs=1e-12) for m, d in result.draws)
    assert result.indices.tolist() == [3, 2] and result.n == 2
    assert result.distance == 0.0 and result.distance_all == pytest.approx(5 / 21)
    assert result.support.tolist() == [0, 1, 2] and len(result.draws) == 50
    # one n allowed: that prefix, whatever the draws
    fixed = select_balanced(h, 3, 3, k=5, seed=1)
    assert fixed.indices.tolist() == [3, 2, 1] and fixed.distance == pytest.approx(2 / 15)
    # the initial criterion delta: a draw must beat it (line 6), else nothing is selected
    assert select_balanced(h, 3, 4, k=20, seed=0, delta=0.2).indices.tolist() == [3, 2, 1]
    with pytest.raises(ValueError, match="initial criterion delta=0.1"):
        select_balanced(h, 3, 4, k=20, seed=0, delta=0.1)


def test_algorithm1_picks_the_most_uniform_prefix():
    # R_ph = B, A: clip 3 (all B) first, then 0..2 (equal: input order); taking all skews to A
    h = np.array([[3, 0], [3, 0], [3, 0], [0, 3]])
    result = select_balanced(h, 1, 4, k=50, seed=0)
    assert result.indices.tolist() == [3, 0] and result.distance == pytest.approx(0.0)
    with pytest.raises(ValueError, match="n_min <= n_max"):
        select_balanced(h, 0, 5)
    with pytest.raises(ValueError, match="k"):
        select_balanced(h, 1, 4, k=0)


def test_clips_without_phonemes_rank_last_and_an_empty_corpus_is_refused():
    """A clip without a transcript (empty histogram) has no distribution and cannot come first; a
    corpus with no transcript at all (VoxCeleb2) has nothing to balance."""
    h = np.array([[0, 0], [3, 0], [0, 3]])
    assert rank_clips(h)[-1] == 0
    result = select_balanced(h, 1, 2, k=20, seed=0)
    assert 0 not in result.indices and result.distance == pytest.approx(0.0)
    with pytest.raises(ValueError, match="no clip has a phoneme"):
        select_balanced(np.zeros((3, 4), int), 1, 3)


@pytest.mark.skipif(not (GRID_DATA / "alignments" / "s1").is_dir(),
                    reason=f"the full GRID corpus is not at {GRID_DATA} (set A2V_GRID_DATA): no s1 alignments to select from")
def test_algorithm1_on_the_300_s1_clips_of_grid():
    """The 300 s1 clips: phoneme histograms from their .align words (no video decoded), Algorithm 1
    with config.yaml's balance settings (n_min 0.33·N, n_max N, k 50, seed 0) brings the
    selection's distance to uniform below the whole set's."""
    from a2v.datasets.grid import align_words

    t0 = time.perf_counter()
    aligns = sorted((GRID_DATA / "alignments" / "s1").glob("*.align"))
    assert len(aligns) == 300
    h = np.stack([phoneme_histogram(words_to_phonemes(align_words(a))) for a in aligns])
    n_min, n_max = int(round(0.33 * len(h))), len(h)
    result = select_balanced(h, n_min, n_max, k=50, seed=0)
    print(f"GRID s1, {len(h)} clips: Algorithm 1 kept n = {result.n} (n ~ U({n_min}, {n_max}), k = 50, seed 0); "
          f"distance to uniform before {result.distance_all:.4f}, after {result.distance:.4f} "
          f"({time.perf_counter() - t0:.1f} s)")
    assert result.distance < result.distance_all
    assert n_min <= result.n <= n_max and len(set(result.indices.tolist())) == result.n
    # the top clip holds the rarest phoneme of s1 (CH, only in the letter "h")
    inv = phoneme_inventory()
    assert inv[result.phoneme_rank[h.sum(axis=0)[result.phoneme_rank].nonzero()[0][0]]] == "CH"
    assert h[result.indices[0], inv.index("CH")] > 0
    assert result.distance == pytest.approx(distance_to_uniform(h[result.indices].sum(axis=0), result.support))


def test_selection_figure_and_fact(tmp_path):
    """The report's CRAN Fig. 3 (histogram before/after) and its fact line, from selection.json's keys."""
    from a2v.report.figures import phoneme_figure
    from a2v.report.html import Report, render
    from a2v.stages.report import _selection_fact
    from a2v.stages.select import selection_summary

    inv = phoneme_inventory()
    rows = []
    for k, code in enumerate(["bbaf2n", "lgbm3s", "pwbd8p", "sbit3s"]):
        rows.append({"dataset": "grid", "speaker": "s1", "clip_id": code,
                     "hist": phoneme_histogram(words_to_phonemes(words_from_code(code)))})
    hists = np.stack([r["hist"] for r in rows])
    result = select_balanced(hists, 2, 4, k=10, seed=0)
    summary = selection_summary(rows, [0, 1, 2, 3], set(result.indices.tolist()), "applied", result, 0)
    assert summary["n_selected"] == result.n and summary["histogram_before"] == hists.sum(axis=0).tolist()
    assert summary["histogram_after"] == hists[result.indices].sum(axis=0).tolist() and len(summary["phonemes"]) == len(inv)
    assert summary["distance_after"] == result.distance and summary["distance_before"] == result.distance_all
    assert summary["selected"][0] == ["grid", "s1", rows[result.indices[0]]["clip_id"]]
    png = phoneme_figure(summary)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    fact = _selection_fact(summary)
    assert f"{result.n} of 4" in fact and f"{result.distance_all:.4f} before" in fact and "k = 10" in fact
    page = render(Report(title="t", facts=[("selection", fact)], metrics=__import__("pandas").DataFrame(),
                         metric_columns=[], phoneme_png=png))
    assert "phoneme histogram before and after selection" in page


def test_select_on_a_corpus_in_voxceleb2_layout_skips_algorithm_1(tmp_path):
    """Real clips laid out as VoxCeleb2 (no transcripts): select keeps the whole training pool,
    with a log line saying why, instead of crashing on empty phoneme histograms; the lip-reader is
    not a judge there (WER NA with the reason)."""
    import shutil

    import pandas as pd
    import yaml

    from a2v.config import load_config
    from a2v.datasets.registry import lipreader_reason
    from a2v.stages import select
    from a2v.stages.preprocess import build_shards
    from conftest import GRID_SAMPLE, REPO

    corpus = tmp_path / "vox2" / "dev" / "mp4" / "id00001" / "AbCdEfGhIjK"
    corpus.mkdir(parents=True)
    for k, clip in enumerate(("bgbn8n", "lgbgzp", "pwbd8p"), start=1):
        shutil.copy(GRID_SAMPLE / "s1" / f"{clip}.mpg", corpus / f"{k:05d}.mp4")  # ffmpeg reads by content
    out = tmp_path / "results"
    override = tmp_path / "vox.yaml"
    override.write_text(yaml.safe_dump({
        "results_dir": str(out), "resources_dir": str(tmp_path / "resources"),
        "datasets": {"vox": {"adapter": "voxceleb2", "source": str(tmp_path / "vox2"), "speakers": ["id00001"]}},
        "preprocess": {"crop_size": 64, "min_frames": 25},
    }))
    config = load_config([REPO / "config" / "config.yaml", override])
    shard = build_shards(config, "vox", out)["id00001"]
    log = tmp_path / "select.log"
    exp = {"select": {"n_test": 1, "seed": 0, "balance": {"enabled": True, "n_min_fraction": 0.5, "n_max_fraction": 1.0, "k": 5}}}
    split = pd.read_csv(select.run(config, exp, [shard], tmp_path / "split.tsv", log, selection_json=tmp_path / "sel.json"),
                        sep="\t")
    assert sorted(split["split"]) == ["test", "train", "train"]
    assert "Algorithm 1 skipped: no training clip has a transcript" in log.read_text()
    chosen = select.read_selection(tmp_path / "sel.json")
    assert chosen["algorithm1"].startswith("skipped") and chosen["support"] == [] and chosen["distance_after"] is None
    assert "open vocabulary or no transcripts" in lipreader_reason("vox", config["datasets"]["vox"])
    assert lipreader_reason("grid", config["datasets"]["grid"]) is None


def test_select_caps_the_training_pool_and_adds_the_unseen_speakers(tmp_path):
    """select.n_train draws the training pool (the rest is 'unused'); the unseen speakers' clips
    are the split test_unseen; a speaker cannot be both."""
    import pandas as pd

    from a2v.stages import select
    from a2v.stages.preprocess import build_shards
    from conftest import demo_config, make_corpus

    corpus = make_corpus(tmp_path / "corpus", {"s1": ["bgbn8n", "lgbgzp", "pwbd8p"], "s2": ["swwp2s"]})
    (tmp_path / "results").mkdir()
    config = demo_config(corpus, tmp_path / "results", 64)
    config["datasets"]["grid"]["speakers"] = ["s1", "s2"]
    shards = build_shards(config, "grid", tmp_path / "results")
    exp = {"select": {"n_test": 1, "n_train": 1, "seed": 0, "balance": {"enabled": False}}}
    split = pd.read_csv(select.run(config, exp, [shards["s1"]], tmp_path / "split.tsv", unseen_shards=[shards["s2"]],
                                   selection_json=tmp_path / "selection.json"),
                        sep="\t", dtype={"clip_id": str})
    assert sorted(split.loc[split.speaker == "s1", "split"]) == ["test", "train", "unused"]
    assert split.loc[split.speaker == "s2", "split"].tolist() == ["test_unseen"]
    chosen = select.read_selection(tmp_path / "selection.json")  # Algorithm 1 off: the pool as it is
    train = split[split.split == "train"].iloc[0]
    assert chosen["algorithm1"].startswith("disabled") and chosen["selected"] == [["grid", "s1", train.clip_id]]
    assert chosen["histogram_before"] == chosen["histogram_after"] == train[list(phoneme_inventory())].astype(int).tolist()
    assert chosen["distance_before"] == chosen["distance_after"] and chosen["draws"] is None
    with pytest.raises(ValueError, match="both training speakers and unseen speakers"):
        select.run(config, exp, [shards["s1"]], tmp_path / "bad.tsv", unseen_shards=[shards["s1"]])
