"""Phoneme-balanced sample selection — CRAN (Song, Zhu, Wang, Qi: "Talking Face Generation by
Conditional Recurrent Adversarial Network") §3.3 and its supplement's Algorithm 1.

The paper (supplement, "Sample Selection", and Algorithm 1), step by step:

* Input: a list of video clips ``F_N``; output: a list of selected clips ``F_n``.
* Initialization: "the overall phoneme distribution P_ph", "the maximum and minimum length of
  F_n, n_max and n_min", "the initial selection criterion δ, and iteration times k".
* line 1 ``R_ph ← sort(P_ph, ascending)`` — phonemes ranked by overall occurrence, rarest first
  (:func:`phoneme_rank`);
* line 2 ``F_N ← sort(F_N, R_ph)`` — "the video clips are first ranked according to their
  individual phoneme distribution, where the lower the occurrence rate, the higher the rank of
  the phoneme" (:func:`rank_clips`);
* lines 3–10: ``k`` times, "randomly sample n ~ U(n_min, n_max)", compute the phoneme
  distribution ``P_ph^n`` of the top ``n`` clips and, "if dist(P_ph^n, U) < δ", set
  ``δ = dist(P_ph^n, U)`` and ``F_n ← top n of F_N`` (:func:`select_balanced`). "The best result
  is the one with shortest distance to uniform distribution, U."

Where the paper leaves a choice open, a2v's choice is marked **a2v:** here and at the code:

* **a2v:** ``sort(F_N, R_ph)`` is read as a lexicographic sort: a clip's *individual phoneme
  distribution* (its phoneme histogram normalised to sum 1) is compared phoneme by phoneme in
  ``R_ph`` order, the larger share first — clips with the largest share of the rarest phoneme
  come first, ties broken by the next-rarest phoneme, and so on. (Before, a2v ranked clips by
  the mean overall occurrence rate of their phonemes, a score the paper does not define.)
* **a2v:** phonemes with equal overall counts keep their column order (the 39-phoneme inventory,
  alphabetical) in ``R_ph``; clips with equal distributions keep their input order. A clip
  without phonemes (no transcript) has no distribution: its shares are taken as 0, so it sorts
  after every clip with a phoneme.
* **a2v:** ``U`` is uniform over the phonemes that occur in ``F_N`` (a uniform share of a phoneme
  no candidate clip holds cannot be reached by any selection), and ``dist`` is the total
  variation distance (half the L1 distance); the paper names no distance.
* **a2v:** ``n ~ U(n_min, n_max)`` is the discrete uniform on ``n_min … n_max``, both included
  (the paper's n_max = 15,114 is its whole corpus, so n_max must be reachable).
* **a2v:** the initial ``δ`` defaults to ``+inf`` (the paper gives no value), so the first draw
  always sets ``F_n``; a finite ``δ`` that no draw beats leaves ``F_n`` undefined, which raises.

The paper uses n_min = 5,000, n_max = 15,114 and k = 50 on its 15,114 VoxCeleb videos with
English subtitles; a2v's config gives n_min/n_max as fractions of the candidate clips
(``select.balance``) so the same setting works at any corpus size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def phoneme_distribution(histograms: np.ndarray) -> np.ndarray:
    """Each clip's individual phoneme distribution (its histogram normalised to sum 1).

    Args:
        histograms: ``(N, P)`` or ``(P,)`` non-negative int phoneme counts.

    Returns:
        float64 array of the same shape; rows without phonemes are all 0 (**a2v:** no
        distribution; they rank last in :func:`rank_clips`).
    """
    h = np.asarray(histograms, dtype=np.float64)
    total = h.sum(axis=-1, keepdims=True)
    return np.divide(h, total, out=np.zeros_like(h), where=total > 0)


def phoneme_rank(histograms: np.ndarray) -> np.ndarray:
    """Algorithm 1 line 1, ``R_ph ← sort(P_ph, ascending)``: phoneme columns by overall count,
    rarest first.

    Args:
        histograms: ``(N, P)`` int phoneme counts of the candidate clips ``F_N``.

    Returns:
        ``(P,)`` int64 column indices; **a2v:** equal counts keep column order (stable sort).
    """
    overall = np.asarray(histograms).sum(axis=0)
    return np.argsort(overall, kind="stable").astype(np.int64)


def rank_clips(histograms: np.ndarray, rank: np.ndarray | None = None) -> np.ndarray:
    """Algorithm 1 line 2, ``F_N ← sort(F_N, R_ph)``: the clips, "ranked according to their
    individual phoneme distribution, where the lower the occurrence rate, the higher the rank of
    the phoneme" (CRAN supplement, Sample Selection).

    **a2v:** a lexicographic sort on the clips' individual distributions read in ``R_ph`` order,
    larger share first: the clip with the largest share of the rarest phoneme comes first; equal
    shares are decided by the next-rarest phoneme, and so on; fully equal clips keep their input
    order. A clip without phonemes sorts last.

    Args:
        histograms: ``(N, P)`` int phoneme counts.
        rank: ``R_ph`` (:func:`phoneme_rank` of ``histograms`` when None).

    Returns:
        ``(N,)`` int64 clip indices, first = highest rank.
    """
    histograms = np.asarray(histograms)
    rank = phoneme_rank(histograms) if rank is None else np.asarray(rank)
    shares = phoneme_distribution(histograms)[:, rank]  # (N, P), rarest phoneme first
    # np.lexsort's primary key is its last: reverse so the rarest phoneme decides first; negate
    # for descending shares; lexsort is stable, so equal clips keep their input order
    return np.lexsort((-shares).T[::-1]).astype(np.int64)


def distance_to_uniform(histogram: np.ndarray, support: np.ndarray) -> float:
    """``dist(P, U)``: **a2v:** total variation distance (½·L1) between a phoneme histogram,
    normalised over ``support``, and the uniform distribution on ``support``.

    Args:
        histogram: ``(P,)`` phoneme counts.
        support: int indices of the phonemes ``U`` is uniform over (non-empty).

    Returns:
        distance in [0, 1 − 1/|support|]; an empty histogram is at 1 − 1/|support| (no phoneme
        matches its uniform share — the value of a histogram on one phoneme).

    Raises:
        ValueError: empty ``support``.
    """
    support = np.asarray(support)
    if support.size == 0:
        raise ValueError("the uniform distribution needs at least one phoneme (empty support)")
    h = np.asarray(histogram, dtype=np.float64)[support]
    u = 1.0 / len(h)
    if not h.sum() > 0:
        return 1.0 - u
    return 0.5 * float(np.abs(h / h.sum() - u).sum())


@dataclass(frozen=True)
class Selection:
    """Algorithm 1's result, with what the report draws.

    Indices are into the ``histograms`` given to :func:`select_balanced` (the candidates F_N).
    """

    indices: np.ndarray
    """``F_n``: ``(n,)`` int64, the top ``n`` clips in rank order."""
    n: int
    distance: float
    """``dist(P_ph^n, U)`` of ``F_n`` (the final δ)."""
    distance_all: float
    """``dist(P_ph, U)`` of all candidates F_N (before selection)."""
    order: np.ndarray
    """``(N,)`` int64, F_N sorted (Algorithm 1 line 2)."""
    phoneme_rank: np.ndarray
    """``(P,)`` int64, ``R_ph`` (line 1)."""
    support: np.ndarray
    """int64 columns ``U`` is uniform over: the phonemes occurring in F_N."""
    draws: tuple[tuple[int, float], ...]
    """The ``k`` draws ``(n, dist(P_ph^n, U))`` in order."""
    n_min: int
    n_max: int
    k: int
    delta: float
    """The initial selection criterion δ."""


def select_balanced(histograms: np.ndarray, n_min: int, n_max: int, k: int = 50, seed: int = 0,
                    delta: float = math.inf) -> Selection:
    """CRAN Algorithm 1 (supplement; §3.3): the top-``n`` ranked clips whose phoneme distribution
    is nearest uniform, over ``k`` draws of ``n``.

    Args:
        histograms: ``(N, P)`` int phoneme counts per candidate clip (F_N; P = 39 CMU phonemes in
            a2v, any P works).
        n_min, n_max: bounds of ``n`` (1 ≤ n_min ≤ n_max ≤ N), both included (**a2v:**).
        k: iterations (the paper: 50).
        seed: seed of the draws (``numpy.random.default_rng``).
        delta: the initial selection criterion δ (**a2v:** +inf by default, see the module).

    Returns:
        :class:`Selection`.

    Raises:
        ValueError: bounds outside ``[1, N]``; ``k < 1``; no clip has a phoneme (nothing to
            balance: corpora without transcripts, e.g. VoxCeleb2); no draw beat a finite ``delta``.
    """
    histograms = np.asarray(histograms)
    if histograms.ndim != 2:
        raise ValueError(f"histograms must be (N clips, P phonemes), got shape {histograms.shape}")
    n = len(histograms)
    if not 1 <= n_min <= n_max <= n:
        raise ValueError(f"need 1 <= n_min <= n_max <= {n} (the candidate clips), got n_min={n_min}, n_max={n_max}")
    if k < 1:
        raise ValueError(f"k (iterations) must be >= 1, got {k}")
    if not histograms.sum() > 0:
        raise ValueError("no clip has a phoneme (no transcripts): phoneme balancing has nothing to balance")
    rank = phoneme_rank(histograms)                          # line 1
    order = rank_clips(histograms, rank)                     # line 2
    cumulative = np.cumsum(histograms[order], axis=0)        # row m-1: histogram of the top m clips
    support = np.flatnonzero(histograms.sum(axis=0) > 0).astype(np.int64)
    rng = np.random.default_rng(seed)
    best_n, best_d, draws = None, float(delta), []
    for _ in range(k):                                       # line 3
        m = int(rng.integers(n_min, n_max + 1))              # line 4 (a2v: both bounds included)
        d = distance_to_uniform(cumulative[m - 1], support)  # line 5: P_ph^n, and its distance
        draws.append((m, d))
        if d < best_d:                                       # line 6
            best_n, best_d = m, d                            # lines 7–8
    if best_n is None:
        raise ValueError(f"no draw of n came closer to uniform than the initial criterion delta={delta} "
                         f"(best {min(d for _, d in draws):.6f}): Algorithm 1 selected nothing")
    return Selection(indices=order[:best_n], n=best_n, distance=best_d,
                     distance_all=distance_to_uniform(cumulative[-1], support), order=order, phoneme_rank=rank,
                     support=support, draws=tuple(draws), n_min=n_min, n_max=n_max, k=k, delta=float(delta))
