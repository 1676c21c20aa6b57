"""When each word of a clip is spoken: times from the corpus's alignment file, and frame spans.

The features stage stores the spans as the shard attribute ``word_frames``
(:mod:`a2v.features.shard`); the lip-reader cuts single-word training instances at them
(LipNet §4.1, :mod:`a2v.training.lipreader`).
"""

from __future__ import annotations

import math

from a2v.datasets.grid import SILENCE_TOKENS, parse_align
from a2v.datasets.lombard import parse_alignment, word_spans
from a2v.datasets.record import ClipRecord


def word_times(record: ClipRecord) -> list[tuple[float, float, str]]:
    """The spoken words of a clip with their times, from its transcript file: a GRID ``.align``
    or a Lombard GRID phone alignment (``.json``, grouped into the record's words); ``[]`` for
    other corpora or when the words do not match.

    Returns:
        ``[(start_s, end_s, word), …]`` in seconds, silence left out.

    Raises:
        MediaError: an unreadable or malformed transcript.
    """
    path = record.transcript
    if path.endswith(".align"):
        return [(a, b, w) for a, b, w in parse_align(path) if w not in SILENCE_TOKENS]
    if path.endswith(".json") and record.words:
        spans = word_spans(parse_alignment(path))
        if len(spans) == len(record.words):
            return [(a, b, w) for (a, b), w in zip(spans, record.words)]
    return []


def word_frames(times: list[tuple[float, float, str]], fps: float, first_frame: int, n_frames: int) -> list[tuple[int, int, str]]:
    """Word times (s) → frame spans ``[start, end)`` of a clip that starts at source frame
    ``first_frame`` and has ``n_frames`` frames at ``fps``: start rounded down, end up, clipped
    to the clip; words wholly outside it left out."""
    out = []
    for start_s, end_s, word in times:
        start = max(math.floor(start_s * fps + 1e-6) - first_frame, 0)
        end = min(math.ceil(end_s * fps - 1e-6) - first_frame, n_frames)
        if end > start:
            out.append((start, end, word))
    return out
