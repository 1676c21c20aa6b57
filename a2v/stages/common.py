"""What every stage shares: logging set-up, the per-clip outcome table, atomic small files."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import pandas as pd


def get_logger(name: str, log_file: str | Path | None = None) -> logging.Logger:
    """A logger writing to stderr and, when given, to ``log_file`` (Snakemake's ``log:``)."""
    logger = logging.getLogger(f"a2v.{name}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    wanted = {"stderr"} | ({str(log_file)} if log_file else set())
    have = {getattr(h, "a2v_key", None) for h in logger.handlers}
    if "stderr" not in have:
        h = logging.StreamHandler(sys.stderr)
        h.a2v_key = "stderr"
        h.setFormatter(fmt)
        logger.addHandler(h)
    if log_file and str(log_file) not in have:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        h = logging.FileHandler(log_file)
        h.a2v_key = str(log_file)
        h.setFormatter(fmt)
        logger.addHandler(h)
    for h in list(logger.handlers):
        if getattr(h, "a2v_key", None) not in wanted:
            logger.removeHandler(h)
    return logger


@dataclass
class Outcomes:
    """Per-clip outcome rows of a stage: ``clip_id``, ``status`` (ok/skipped), details, ``kind``
    (the error class of a skipped clip, e.g. ``NoFaceError``) and ``cause`` (its message, which
    names the file). In a shard of several speakers the rows start with the clip's ``speaker``
    (``speaker`` given); a shard of one speaker's table has no such column, as before."""

    rows: list[dict] = field(default_factory=list)

    @staticmethod
    def _first(clip_id: str, speaker: str | None) -> dict:
        return {"clip_id": clip_id} if speaker is None else {"speaker": speaker, "clip_id": clip_id}

    def ok(self, clip_id: str, speaker: str | None = None, **details) -> None:
        self.rows.append({**self._first(clip_id, speaker), "status": "ok", **details, "kind": "", "cause": ""})

    def skipped(self, clip_id: str, cause: str, kind: str = "error", speaker: str | None = None, **details) -> None:
        self.rows.append({**self._first(clip_id, speaker), "status": "skipped", **details, "kind": kind, "cause": cause})

    @property
    def n_ok(self) -> int:
        return sum(r["status"] == "ok" for r in self.rows)

    def write(self, path: str | Path) -> Path:
        """Write the table as TSV, atomically."""
        return write_table(pd.DataFrame(self.rows), path)


def write_table(df: pd.DataFrame, path: str | Path, sep: str = "\t") -> Path:
    """Write a DataFrame to CSV/TSV (floats to 6 significant digits, missing as ``NA``) under a
    temporary name, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    df.to_csv(tmp, sep=sep, index=False, na_rep="NA", float_format="%.6g")
    os.replace(tmp, path)
    return path


def progress(iterable, desc: str, total: int | None = None):
    """tqdm over ``iterable`` on stderr, throttled so Snakemake logs stay readable."""
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, file=sys.stderr, mininterval=5.0, ascii=True)


@contextlib.contextmanager
def atomic_h5(path: str | Path):
    """An ``h5py.File`` open for writing under a temporary name, renamed to ``path`` on success.

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".h5.tmp", prefix=f".{path.stem}.", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as h5:
            yield h5
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
