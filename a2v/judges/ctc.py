"""CTC decoding of the lip-reader's output: greedy best path (:func:`greedy_decode`) and the best
CTC path through a sentence grammar (:class:`GrammarDecoder`, Viterbi).

LipNet (Assael et al. 2016, §3.2) decodes with CTC beam search and a character language model
trained on GRID's sentences. GRID's sentences follow one fixed grammar (Cooke et al. 2006:
command color preposition letter digit adverb, :data:`a2v.models.lipreader.GRID_VOCABULARY`), so
the exact language model is the grammar itself. :class:`GrammarDecoder` builds the CTC state
graph of every sentence the grammar allows — per word the CTC chain ``blank? c1 (blank) c2 … cn``
with a blank required between equal neighbours, words joined by a space (Graves et al. 2006,
§4.1) — and returns the words of the single most probable path (the Viterbi approximation of CTC
decoding). It always outputs a grammatical sentence, so its WER is bounded by what the frames
say, never by spelling.

Chance: a reader that sees nothing still names 1 of 4 commands, colors, prepositions and
adverbs, 1 of 25 letters and 1 of 10 digits, so compare WER with the static-frame baseline and
the real clips (``metrics.csv`` has both rows).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from a2v.models.lipreader import ALPHABET, BLANK


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor | None = None) -> list[str]:
    """Best-path CTC decoding: argmax per frame, merge repeats, drop blanks (Graves et al. 2006).

    Args:
        log_probs: ``(T, B, C)`` float.
        lengths: ``(B,)`` valid frames per item (``None`` → all T).

    Returns:
        B strings, whitespace-normalised.
    """
    best = log_probs.argmax(dim=-1).T.cpu().tolist()  # (B, T)
    out = []
    for b, seq in enumerate(best):
        n = len(seq) if lengths is None else int(lengths[b])
        chars, prev = [], BLANK
        for k in seq[:n]:
            if k != prev and k != BLANK:
                chars.append(ALPHABET[k - 1])
            prev = k
        out.append(" ".join("".join(chars).split()))
    return out


GRID_SLOTS = ("command", "color", "preposition", "letter", "digit", "adverb")
"""GRID's slot order (Cooke et al. 2006)."""


def _code(char: str) -> int:
    return 1 + ALPHABET.index(char)


class GrammarDecoder:
    """Viterbi decoding of CTC log-probabilities over a slot grammar.

    Args:
        slots: per slot, the words it allows, in spoken order (lowercase a–z).

    Raises:
        ValueError: an empty slot or a word with a character outside a–z.
    """

    def __init__(self, slots: Sequence[Sequence[str]]):
        if not slots or any(not words for words in slots):
            raise ValueError("a grammar needs at least one slot and a word in every slot")
        labels: list[int] = []
        words_of: list[tuple[int, str] | None] = []
        src: list[int] = []
        dst: list[int] = []

        def node(label: int, word: tuple[int, str] | None = None) -> int:
            labels.append(label)
            words_of.append(word)
            src.append(len(labels) - 1)  # every state may repeat (CTC self-loop)
            dst.append(len(labels) - 1)
            return len(labels) - 1

        def edge(a: int, b: int) -> None:
            src.append(a)
            dst.append(b)

        entries: list[int] = []  # states a slot's first characters are entered from
        for k, words in enumerate(slots):
            firsts, lasts = [], []
            for word in words:
                if not word or any(c not in ALPHABET[1:] for c in word):
                    raise ValueError(f"grammar word {word!r} must be a–z letters")
                chain: list[int] = []
                for i, char in enumerate(word):
                    state = node(_code(char), (k, word))
                    if i:
                        gap = node(BLANK, (k, word))
                        edge(chain[-1], gap)
                        edge(gap, state)
                        if word[i - 1] != char:
                            edge(chain[-1], state)
                    chain.append(state)
                firsts.append(chain[0])
                lasts.append(chain[-1])
            if k == 0:
                lead = node(BLANK)
                self.start = np.array([lead, *firsts])
                entries = [lead]
            for first in firsts:
                for e in entries:
                    edge(e, first)
            if k < len(slots) - 1:  # blank? space blank? between words
                before, space, after = node(BLANK), node(_code(" ")), node(BLANK)
                for last in lasts:
                    edge(last, before)
                    edge(last, space)
                edge(before, space)
                edge(space, after)
                entries = [space, after]
            else:
                tail = node(BLANK)
                for last in lasts:
                    edge(last, tail)
                self.end = np.array([*lasts, tail])
        self.labels = np.array(labels)
        self.words_of = words_of
        order = np.argsort(np.array(dst), kind="stable")
        self.src, self.dst = np.array(src)[order], np.array(dst)[order]
        self._last_of_dst = np.r_[self.dst[1:] != self.dst[:-1], True]

    @classmethod
    def grid(cls) -> "GrammarDecoder":
        """The GRID sentence grammar."""
        from a2v.models.lipreader import GRID_VOCABULARY

        return cls([GRID_VOCABULARY[s] for s in GRID_SLOTS])

    def decode(self, log_probs: np.ndarray) -> str:
        """The sentence of the best grammatical CTC path.

        Args:
            log_probs: ``(T, C)`` float CTC log-probabilities of one clip (C = 28 classes).

        Returns:
            The words, space-separated.

        Raises:
            ValueError: fewer frames than the shortest sentence needs (no path).
        """
        log_probs = np.asarray(log_probs, dtype=np.float64)
        emit = log_probs[:, self.labels]  # (T, S)
        n_states = len(self.labels)
        delta = np.full(n_states, -np.inf)
        delta[self.start] = emit[0, self.start]
        back = np.zeros((len(emit), n_states), dtype=np.int64)
        for t in range(1, len(emit)):
            cand = delta[self.src]
            # per destination, the best predecessor: sort each destination's edges by score
            order = np.lexsort((cand, self.dst))[self._last_of_dst]
            best = np.full(n_states, -np.inf)
            best[self.dst[order]] = cand[order]
            back[t, self.dst[order]] = self.src[order]
            delta = best + emit[t]
        if not np.isfinite(delta[self.end]).any():
            raise ValueError(f"{len(emit)} frames are too few for any sentence of the grammar")
        state = int(self.end[np.argmax(delta[self.end])])
        path = [state]
        for t in range(len(emit) - 1, 0, -1):
            state = int(back[t, state])
            path.append(state)
        words: list[tuple[int, str]] = []
        for s in reversed(path):
            w = self.words_of[s]
            if w is not None and (not words or words[-1] != w):
                words.append(w)
        return " ".join(word for _, word in words)
