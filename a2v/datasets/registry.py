"""Adapter lookup by the ``adapter`` name a dataset declares in the config."""

from __future__ import annotations

import inspect
import math
from pathlib import Path

from a2v.datasets.cremad import CremaDAdapter
from a2v.datasets.folder import FolderAdapter
from a2v.datasets.grid import SILENCE_TOKENS, GridAdapter, parse_align
from a2v.datasets.lombard import LombardGridAdapter, parse_alignment, word_spans
from a2v.datasets.record import ClipRecord
from a2v.datasets.voxceleb2 import VoxCeleb2Adapter
from a2v.errors import ConfigError

ADAPTERS = {
    "grid": GridAdapter,
    "lombard_grid": LombardGridAdapter,
    "crema_d": CremaDAdapter,
    "voxceleb2": VoxCeleb2Adapter,
    "folder": FolderAdapter,
}


def make_adapter(name: str, root: str | Path, dataset: str, **options):
    """An adapter instance for a corpus folder.

    Args:
        name: a key of :data:`ADAPTERS` (``datasets.<name>.adapter``).
        root: the corpus folder.
        dataset: the dataset's name in the config.
        **options: the adapter's keyword options (``datasets.<name>.options``), e.g.
            ``view="side"`` for ``lombard_grid``.

    Raises:
        ConfigError: unknown adapter name, an option the adapter does not take, or a bad value.
    """
    if name not in ADAPTERS:
        raise ConfigError(f"unknown dataset adapter {name!r}; known: {sorted(ADAPTERS)}")
    cls = ADAPTERS[name]
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "root", "dataset")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(f"dataset {dataset!r}: adapter {name!r} takes no option {unknown}; its options: {accepted}")
    return cls(root, dataset=dataset, **options)


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
