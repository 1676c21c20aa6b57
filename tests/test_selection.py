"""Phonemes from GRID words (CMU dictionary) and Algorithm 1 (CRAN §3.3)."""

from __future__ import annotations

import numpy as np
import pytest

from a2v.selection.balance import clip_rarity, distance_to_uniform, select_balanced
from a2v.selection.phonemes import phoneme_histogram, phoneme_inventory, words_to_phonemes
from a2v.datasets.grid import words_from_code
from a2v.errors import A2VError


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


def test_rarity_orders_rare_phoneme_clips_first():
    # clip 0 has only the common phoneme, clip 1 a rare one
    h = np.array([[5, 0], [1, 1], [5, 0]])
    r = clip_rarity(h)
    assert r[1] < r[0] == r[2]


def test_distance_known_answers():
    support = np.array([0, 1, 2, 3])
    assert distance_to_uniform(np.array([1, 1, 1, 1]), support) == 0.0
    assert distance_to_uniform(np.array([4, 0, 0, 0]), support) == pytest.approx(0.75)


def test_algorithm1_picks_the_most_uniform_prefix():
    # rarity order: clip 3 (rare B) , then 0..2 ; taking all skews to A
    h = np.array([[3, 0], [3, 0], [3, 0], [0, 3]])
    chosen, d = select_balanced(h, 1, 4, k=50, seed=0)
    assert chosen[0] == 3
    assert len(chosen) == 2 and d == pytest.approx(0.0)
    with pytest.raises(ValueError):
        select_balanced(h, 0, 5)


def test_clips_without_phonemes_rank_last_and_an_empty_corpus_is_refused():
    """A clip without a transcript (empty histogram) has no rarity and cannot come first; a corpus
    with no transcript at all (VoxCeleb2) has nothing to balance."""
    h = np.array([[0, 0], [3, 0], [0, 3]])
    assert np.isinf(clip_rarity(h)[0]) and np.argsort(clip_rarity(h), kind="stable")[-1] == 0
    chosen, d = select_balanced(h, 1, 2, k=20, seed=0)
    assert 0 not in chosen and d == pytest.approx(0.0)
    with pytest.raises(ValueError, match="no clip has a phoneme"):
        select_balanced(np.zeros((3, 4), int), 1, 3)
