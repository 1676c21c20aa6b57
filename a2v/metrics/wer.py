"""WER: word error rate of lip-read transcripts against the spoken sentences (↓).

Levenshtein alignment of words (``jiwer``; Morris, Maier & Green, "From WER and RIL to MER and
WIL", Interspeech 2004): ``WER = (S + D + I) / N`` with S, D, I the substituted, deleted and
inserted words and N the number of reference words. Used on GRID by LipNet (Assael et al.,
2016) and, with a pretrained lip-reader on generated videos, by the talking-face papers.
"""

from __future__ import annotations

import jiwer

_NORMALISE = jiwer.Compose(
    [
        jiwer.ToLowerCase(),
        jiwer.RemoveMultipleSpaces(),
        jiwer.Strip(),
        jiwer.ReduceToListOfListOfWords(),
    ]
)


def word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    """Corpus-level WER: total word errors over all sentences / total reference words (↓).

    ``sum_i (S_i + D_i + I_i) / sum_i N_i`` (not the mean of per-sentence WERs), after
    lowercasing and whitespace normalisation (runs of spaces collapsed, ends stripped, split on
    whitespace); punctuation is kept. In ``[0, inf)``: insertions can push it above 1.

    Args:
        references: the true sentences, e.g. GRID's ``"bin blue at f two now"``.
        hypotheses: the transcripts, one per reference (an empty string is allowed).

    Raises:
        ValueError: lengths differ, no sentence, or a reference with no word.
    """
    references, hypotheses = list(references), list(hypotheses)
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    if not references:
        raise ValueError("no sentence to score")
    if any(not ref.split() for ref in references):
        raise ValueError("every reference needs at least one word")
    return float(
        jiwer.wer(references, hypotheses, reference_transform=_NORMALISE, hypothesis_transform=_NORMALISE)
    )
