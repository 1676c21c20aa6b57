"""Phoneme-balanced sample selection — CRAN (Song et al.) §3.3, Algorithm 1.

1. Overall phoneme distribution P_ph of the candidate clips; phonemes ranked by occurrence
   (rarest first).
2. Clips sorted by rarity: **a2v:** a clip's score is the mean overall occurrence rate of its
   phonemes; the lower, the earlier (clips rich in rare phonemes first). A clip without phonemes
   (no transcript) has no rarity: it ranks last.
3. ``k`` times: draw ``n ~ U(n_min, n_max)``; the phoneme distribution of the top-``n`` clips;
   keep the ``n`` whose distribution is closest to uniform. **a2v:** distance = total variation
   (half the L1 distance) over the phonemes that occur in the candidates.

The paper uses n_min = 5000, n_max = 15114, k = 50 on GRID; a2v takes n_min/n_max as fractions of
the candidate clips so the same config works at any corpus size.
"""

from __future__ import annotations

import numpy as np


def clip_rarity(histograms: np.ndarray) -> np.ndarray:
    """Mean overall occurrence rate of each clip's phonemes. ``(N, P)`` counts → ``(N,)`` float64;
    ``inf`` for a clip without phonemes (it sorts last)."""
    total = histograms.sum(axis=0).astype(np.float64)
    rate = total / max(total.sum(), 1.0)
    counts = histograms.sum(axis=1)
    return np.where(counts > 0, (histograms @ rate) / np.maximum(counts, 1), np.inf)


def distance_to_uniform(histogram: np.ndarray, support: np.ndarray) -> float:
    """Total-variation distance between a phoneme histogram (normalised) and uniform on ``support``."""
    h = histogram[support].astype(np.float64)
    p = h / max(h.sum(), 1.0)
    return 0.5 * float(np.abs(p - 1.0 / len(p)).sum())


def select_balanced(histograms: np.ndarray, n_min: int, n_max: int, k: int = 50, seed: int = 0) -> tuple[np.ndarray, float]:
    """Algorithm 1: indices of the selected clips and their distance to uniform.

    Args:
        histograms: ``(N, P)`` int phoneme counts per clip.
        n_min, n_max: bounds of the number of clips selected (1 ≤ n_min ≤ n_max ≤ N).
        k: iterations.
        seed: RNG seed.

    Returns:
        (indices into ``histograms`` of the selected clips, in rarity order; their distance).

    Raises:
        ValueError: bounds outside ``[1, N]``; no clip with a phoneme (nothing to balance: corpora
            without transcripts, e.g. VoxCeleb2).
    """
    n = len(histograms)
    if not 1 <= n_min <= n_max <= n:
        raise ValueError(f"need 1 <= n_min <= n_max <= {n}, got n_min={n_min}, n_max={n_max}")
    if not np.asarray(histograms).sum() > 0:
        raise ValueError("no clip has a phoneme (no transcripts): phoneme balancing has nothing to balance")
    order = np.argsort(clip_rarity(histograms), kind="stable")
    cumulative = np.cumsum(histograms[order], axis=0)
    support = np.flatnonzero(histograms.sum(axis=0) > 0)
    rng = np.random.default_rng(seed)
    best_n, best_d = n_max, np.inf
    for _ in range(k):
        m = int(rng.integers(n_min, n_max + 1))
        d = distance_to_uniform(cumulative[m - 1], support)
        if d < best_d:
            best_n, best_d = m, d
    return order[:best_n], best_d
