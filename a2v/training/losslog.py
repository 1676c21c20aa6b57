"""The per-step loss table of a training run (``losses.csv``), safe to resume."""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path


class LossLog:
    """``losses.csv`` writer, flushed every row; on resume, keeps only rows with ``step <= resume step``.

    Args:
        path: the CSV file (rewritten atomically at construction).
        columns: header; rows may omit columns (written empty).
        resume_step: ``None`` → start a new file; else keep the existing rows up to this step
            (when the header matches).
    """

    def __init__(self, path: Path, columns: list[str], resume_step: int | None):
        self.path, self.columns = path, columns
        rows = []
        if resume_step is not None and path.exists():
            with open(path, newline="") as f:
                reader = csv.DictReader(f)
                if reader.fieldnames == columns:
                    rows = [r for r in reader if int(r["step"]) <= resume_step]
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w", newline="") as f:
            w = csv.DictWriter(f, columns)
            w.writeheader()
            w.writerows(rows)
        os.replace(tmp, path)
        self._f = open(path, "a", newline="")
        self._w = csv.DictWriter(self._f, columns)

    def write(self, row: dict) -> None:
        self._w.writerow({k: row.get(k, "") for k in self.columns})
        self._f.flush()

    def close(self) -> None:
        self._f.close()
