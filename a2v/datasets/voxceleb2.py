"""VoxCeleb2 (Chung, Nagrani & Zisserman 2018): talking celebrities cut from YouTube videos.

Source: J. S. Chung, A. Nagrani, A. Zisserman, "VoxCeleb2: Deep Speaker Recognition",
Proc. Interspeech 2018, pp. 1086–1090, doi:10.21437/Interspeech.2018-1929;
https://www.robots.ox.ac.uk/~vgg/data/voxceleb/vox2.html. The metadata and annotations are
licensed CC BY-SA 4.0; the videos are excerpts of YouTube videos and remain their owners'
(download after registering with the authors).

Content: over a million utterances of 6,112 speakers (5,994 in ``dev``, 118 in ``test``),
face-centred 224×224 mp4 at 25 fps with the soundtrack, each a few seconds long.

Layout: ``vox2_dev_mp4_parta[a-i]`` (concatenated into one zip) and ``vox2_test_mp4.zip``::

    dev/mp4/<speaker>/<youtube id>/<NNNNN>.mp4
    test/mp4/<speaker>/<youtube id>/<NNNNN>.mp4     (the test zip itself unpacks to mp4/…)

``<speaker>`` is ``id`` + five digits (``id00012``), ``<youtube id>`` the 11-character id of
the source video (letters, digits, ``-`` and ``_``), ``<NNNNN>`` the five-digit segment
number within it. The adapter's root may be the folder holding ``dev/`` and/or ``test/``, a
``dev``/``test`` folder, or an ``mp4/`` folder itself. There are no transcripts: records have
no words.

Clip ids are ``<youtube id>__<NNNNN>`` (``1zcIwhmdeo4__00001``). The segment is all digits, so
splitting the clip id at its *last* ``__`` gives back the YouTube id and the segment even when
the YouTube id itself contains ``_``.
"""

from __future__ import annotations

import re
from pathlib import Path

from a2v.datasets.base import CorpusAdapter, natural_key
from a2v.datasets.record import ClipRecord
from a2v.errors import MediaError

SPLITS = ("dev", "test")
_SPEAKER = re.compile(r"^id\d{5}$")
_YOUTUBE_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
_SEGMENT = re.compile(r"^\d{5}$")


def clip_id(youtube_id: str, segment: str) -> str:
    """The clip id of a segment: ``<youtube id>__<segment>``."""
    return f"{youtube_id}__{segment}"


def split_clip_id(clip: str) -> tuple[str, str]:
    """``(youtube id, segment)`` of a clip id made by :func:`clip_id`.

    Raises:
        ValueError: not such a clip id.
    """
    youtube_id, sep, segment = clip.rpartition("__")
    if not sep or not youtube_id or not segment.isdigit():
        raise ValueError(f"{clip!r} is not a VoxCeleb2 clip id (<youtube id>__<segment>)")
    return youtube_id, segment


class VoxCeleb2Adapter(CorpusAdapter):
    """Index a VoxCeleb2 folder (the archives' layout).

    Records: speaker ``idNNNNN``; clip id ``<youtube id>__<NNNNN>``; video the mp4 (its own
    soundtrack is the audio); no transcript, no words; meta ``{"youtube_id", "segment",
    "split"}`` (split ``dev``/``test``, or ``""`` when the folder does not say). Files and
    folders that do not follow the naming scheme go to ``ignored``.

    Args:
        root: a folder holding ``dev/mp4`` and/or ``test/mp4``, or ``mp4/``, or the ``mp4``
            folder itself.
        dataset: dataset name recorded in each :class:`ClipRecord`.
    """

    def __init__(self, root: str | Path, dataset: str = "voxceleb2"):
        super().__init__(root, dataset)

    def mp4_dirs(self) -> list[tuple[str, Path]]:
        """``(split, folder)`` of each folder holding speaker folders.

        Raises:
            MediaError: none found under the root.
        """
        if not self.root.is_dir():
            raise MediaError(self.root, "VoxCeleb2 folder not found")
        candidates = [(s, self.root / s / "mp4") for s in SPLITS]
        candidates.append((self.root.name if self.root.name in SPLITS else "", self.root / "mp4"))
        found = [(s, d) for s, d in candidates if d.is_dir()]
        if not found and any(_SPEAKER.match(p.name) for p in self.root.iterdir() if p.is_dir()):
            split = self.root.parent.name if self.root.name == "mp4" and self.root.parent.name in SPLITS else ""
            found = [(split, self.root)]
        if not found:
            raise MediaError(self.root, "no VoxCeleb2 mp4 folder (dev/mp4, test/mp4, mp4 or idNNNNN speaker folders)")
        return found

    def speakers(self) -> list[str]:
        """Speaker ids (``id00012``…) over all splits found, sorted."""
        return sorted({p.name for _, d in self.mp4_dirs() for p in d.iterdir() if p.is_dir() and _SPEAKER.match(p.name)},
                      key=natural_key)

    def speaker_clips(self, speaker: str) -> list[ClipRecord]:
        """One speaker's clips (see the class docstring).

        Raises:
            MediaError: no split holds a folder for ``speaker``.
        """
        records, seen = [], False
        for split, mp4_dir in self.mp4_dirs():
            folder = mp4_dir / speaker
            if not folder.is_dir():
                continue
            seen = True
            for video_dir in sorted(folder.iterdir()):
                if video_dir.name.startswith("."):
                    continue
                if not video_dir.is_dir() or not _YOUTUBE_ID.match(video_dir.name):
                    self.ignore(video_dir)
                    continue
                for video in sorted(video_dir.iterdir()):
                    if video.name.startswith("."):
                        continue
                    if video.suffix.lower() != ".mp4" or not video.is_file() or not _SEGMENT.match(video.stem):
                        self.ignore(video)
                        continue
                    records.append(ClipRecord(
                        self.dataset, speaker, clip_id(video_dir.name, video.stem), str(video), "", (), "",
                        {"youtube_id": video_dir.name, "segment": video.stem, "split": split},
                    ))
        if not seen:
            raise MediaError(self.root, f"speaker folder for {speaker} not found in {self.root}")
        return sorted(records, key=lambda r: r.clip_id)
