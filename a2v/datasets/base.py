"""What every corpus adapter provides, and the helpers the adapters share.

An adapter turns a corpus folder, in the layout its archives unpack to, into
:class:`~a2v.datasets.record.ClipRecord` s. The protocol is two methods:

* ``speakers() -> list[str]``: the speaker ids present in the folder;
* ``clips(speakers=None) -> list[ClipRecord]``: the clips of the given speakers (all when
  ``None`` or empty), sorted by speaker (in the order asked) and clip id.

plus the attribute ``ignored``: the files :meth:`CorpusAdapter.clips` passed over because
their names do not follow the corpus's naming scheme (or their companion file was unusable),
so that the ingest stage can log them. Adapters are built as ``Adapter(root, dataset=...,
**options)``.

Identifiers. Clip ids become HDF5 group names and parts of file names, speaker ids become
file names and Snakemake wildcards (``workflow/rules/common.smk`` constrains ``speaker`` to
``[A-Za-z0-9_]+``). So:

* speaker ids match :data:`SPEAKER_ID` = ``[A-Za-z0-9_]+``;
* clip ids match :data:`CLIP_ID` = ``[A-Za-z0-9_-]+`` and are unique within their speaker.

Adapters of corpora with a fixed naming scheme list a file whose name breaks these rules in
``ignored``; :meth:`CorpusAdapter.clips` raises :class:`~a2v.errors.MediaError` naming the
file for anything that still breaks them (e.g. two files of one speaker giving one clip id).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import ClassVar
from pathlib import Path

from a2v.datasets.record import ClipRecord
from a2v.errors import MediaError

SPEAKER_ID = re.compile(r"[A-Za-z0-9_]+")
"""Allowed speaker ids (file names, Snakemake ``speaker`` wildcard)."""
CLIP_ID = re.compile(r"[A-Za-z0-9_-]+")
"""Allowed clip ids (HDF5 group names, file-name parts)."""
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".mpg", ".mpeg", ".webm", ".flv")
"""Video file suffixes the adapters recognise (lower case; matching ignores case)."""


def is_speaker_id(text: str) -> bool:
    """Whether ``text`` is a valid speaker id (:data:`SPEAKER_ID`)."""
    return SPEAKER_ID.fullmatch(text) is not None


def is_clip_id(text: str) -> bool:
    """Whether ``text`` is a valid clip id (:data:`CLIP_ID`)."""
    return CLIP_ID.fullmatch(text) is not None


def natural_key(text: str) -> tuple:
    """Sort key that orders digit runs by value: ``s2`` before ``s10``."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text) if part)


def list_videos(folder: str | Path, suffixes: tuple[str, ...] = VIDEO_SUFFIXES, recursive: bool = False) -> list[Path]:
    """Video files in ``folder`` (sorted by path), hidden files and folders left out.

    Args:
        folder: where to look.
        suffixes: accepted suffixes, lower case, with the dot.
        recursive: also look in sub-folders.
    """
    folder = Path(folder)
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        p for p in found
        if p.is_file() and p.suffix.lower() in suffixes
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def missing_speaker(where: str | Path, speaker: str, root: str | Path) -> MediaError:
    """The error for a requested speaker the corpus folder does not hold."""
    return MediaError(where, f"speaker folder for {speaker} not found in {root}")


class CorpusAdapter(ABC):
    """Base of the corpus adapters: ``speakers()``, ``clips()`` and ``ignored``.

    Subclasses implement :meth:`speakers` and :meth:`speaker_clips`; :meth:`clips` loops over
    the speakers and checks the ids.

    Args:
        root: the corpus folder.
        dataset: dataset name recorded in each :class:`ClipRecord`.
    """

    vocabulary: ClassVar[str | None] = None
    """The closed vocabulary the corpus's sentences are drawn from (``"grid"``: GRID's sentence
    grammar, also Lombard GRID's), or ``None`` (open vocabulary, or no transcripts). A lip-reader
    is a judge only on a corpus of the vocabulary it was trained and decodes with
    (:func:`a2v.judges.lipreader_reason`)."""

    def __init__(self, root: str | Path, dataset: str):
        self.root = Path(root)
        self.dataset = dataset
        self.ignored: list[str] = []

    @abstractmethod
    def speakers(self) -> list[str]:
        """Speaker ids present in the corpus folder, sorted."""

    @abstractmethod
    def speaker_clips(self, speaker: str) -> list[ClipRecord]:
        """One speaker's clips, sorted by clip id; files passed over go to ``self.ignored``.

        Raises:
            MediaError: the corpus holds no such speaker.
        """

    def clips(self, speakers: list[str] | None = None) -> list[ClipRecord]:
        """Clip records of the given speakers (all when ``None`` or empty).

        ``ignored`` is reset and refilled on each call.

        Raises:
            MediaError: a requested speaker is missing, or an id is unsafe or not unique
                (names the file).
        """
        self.ignored = []
        records: list[ClipRecord] = []
        for speaker in speakers or self.speakers():
            recs = self.speaker_clips(speaker)
            check_ids(recs)
            records.extend(recs)
        return records

    def ignore(self, path: str | Path) -> None:
        """Record a file passed over."""
        self.ignored.append(str(path))


def check_ids(records: list[ClipRecord]) -> None:
    """Check that speaker and clip ids use the safe characters and clip ids are unique per speaker.

    Raises:
        MediaError: names the offending video (both files for a duplicate).
    """
    seen: dict[tuple[str, str], str] = {}
    for rec in records:
        if not is_speaker_id(rec.speaker):
            raise MediaError(rec.video, f"speaker id {rec.speaker!r} has characters outside [A-Za-z0-9_]; rename the folder/file")
        if not is_clip_id(rec.clip_id):
            raise MediaError(rec.video, f"clip id {rec.clip_id!r} has characters outside [A-Za-z0-9_-]; rename the file")
        key = (rec.speaker, rec.clip_id)
        if key in seen:
            raise MediaError(rec.video, f"clip id {rec.clip_id!r} of speaker {rec.speaker} is also given by {seen[key]}")
        seen[key] = rec.video
