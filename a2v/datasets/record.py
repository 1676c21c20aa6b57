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
    """

    dataset: str
    speaker: str
    clip_id: str
    video: str
    transcript: str = ""
    words: tuple[str, ...] = field(default_factory=tuple)


INDEX_COLUMNS = ["dataset", "speaker", "clip_id", "video", "transcript", "words"]


def write_index(records: list[ClipRecord], path: str | Path) -> Path:
    """Write records as a TSV (``words`` JSON-encoded), atomically.

    Returns:
        the path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [{**asdict(r), "words": json.dumps(list(r.words))} for r in records]
    tmp = path.with_name(f".{path.name}.tmp")
    pd.DataFrame(rows, columns=INDEX_COLUMNS).to_csv(tmp, sep="\t", index=False)
    tmp.replace(path)
    return path


def read_index(path: str | Path) -> list[ClipRecord]:
    """Read an index TSV written by :func:`write_index`.

    Raises:
        FileNotFoundError: no index at ``path``.
        ValueError: columns missing.
    """
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    missing = set(INDEX_COLUMNS) - set(df.columns)
    if missing:
        raise ValueError(f"{path}: index lacks columns {sorted(missing)}")
    return [
        ClipRecord(r.dataset, r.speaker, r.clip_id, r.video, r.transcript, tuple(json.loads(r.words)))
        for r in df.itertuples(index=False)
    ]
