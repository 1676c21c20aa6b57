"""The clip record every corpus adapter yields, and the dataset index file (TSV)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class ClipRecord:
    """One clip of a corpus.

    Attributes:
        dataset: dataset name from the config (e.g. ``grid``).
        speaker: speaker id (e.g. ``s1``).
        clip_id: clip id, unique within the speaker (e.g. ``bbaf2n``).
        video: path of the video file.
        transcript: path of the transcript/alignment file, or ``""``.
        words: the spoken words, lower case, without silence tokens.
        audio: path of a separate audio file when the corpus ships audio apart from the
            video (e.g. CREMA-D's ``AudioWAV``), or ``""``: take the audio from the video.
        meta: JSON-able per-clip labels, e.g. ``{"emotion": "ANG", "intensity": "XX"}``
            (left out of the hash: the record stays hashable).
    """

    dataset: str
    speaker: str
    clip_id: str
    video: str
    transcript: str = ""
    words: tuple[str, ...] = field(default_factory=tuple)
    audio: str = ""
    meta: dict = field(default_factory=dict, hash=False)


INDEX_COLUMNS = ["dataset", "speaker", "clip_id", "video", "transcript", "words", "audio", "meta"]
REQUIRED_COLUMNS = INDEX_COLUMNS[:6]
"""Columns every index has; ``audio`` and ``meta`` came later and default to ``""`` and ``{}``."""


def write_index(records: list[ClipRecord], path: str | Path) -> Path:
    """Write records as a TSV (``words`` and ``meta`` JSON-encoded), atomically.

    Returns:
        the path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        {**asdict(r), "words": json.dumps(list(r.words)), "meta": json.dumps(r.meta, sort_keys=True)} for r in records
    ]
    tmp = path.with_name(f".{path.name}.tmp")
    pd.DataFrame(rows, columns=INDEX_COLUMNS).to_csv(tmp, sep="\t", index=False)
    tmp.replace(path)
    return path


def read_index(path: str | Path) -> list[ClipRecord]:
    """Read an index TSV written by :func:`write_index`.

    An index written before the ``audio`` and ``meta`` columns existed still reads: those
    fields get ``""`` and ``{}``.

    Raises:
        FileNotFoundError: no index at ``path``.
        ValueError: required columns missing, or a ``meta`` cell that is not a JSON object.
    """
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    missing = set(REQUIRED_COLUMNS) - set(df.columns)
    if missing:
        raise ValueError(f"{path}: index lacks columns {sorted(missing)}")
    records = []
    for r in df.to_dict("records"):
        meta = json.loads(r.get("meta") or "{}")
        if not isinstance(meta, dict):
            raise ValueError(f"{path}: clip {r['speaker']}/{r['clip_id']}: meta is not a JSON object: {r['meta']!r}")
        records.append(ClipRecord(
            r["dataset"], r["speaker"], r["clip_id"], r["video"], r["transcript"], tuple(json.loads(r["words"])),
            r.get("audio", ""), meta,
        ))
    return records
