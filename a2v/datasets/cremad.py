"""CREMA-D, the Crowd-sourced Emotional Multimodal Actors Dataset (Cao et al. 2014; ODbL 1.0).

Source: H. Cao, D. G. Cooper, M. K. Keutmann, R. C. Gur, A. Nenkova, R. Verma, "CREMA-D:
Crowd-sourced Emotional Multimodal Actors Dataset", IEEE Transactions on Affective Computing
5(4):377–390 (2014), doi:10.1109/TAFFC.2014.2336244. Distributed in the Git-LFS repository
https://github.com/CheyneyComputerScience/CREMA-D under the Open Database License 1.0 (the
individual contents under the Database Contents License 1.0).

Content: 7,442 clips of 91 actors (ids ``1001``…``1091``), each saying some of 12 fixed
sentences with one of six emotions; the sentence "It's eleven o'clock" at three intensities.

Layout (repository root)::

    VideoFlash/<actor>_<sentence>_<emotion>_<level>.flv   the audio-visual recordings
    AudioWAV/<actor>_<sentence>_<emotion>_<level>.wav     audio converted from the videos
    AudioMP3/…, VideoDemographics.csv, SentenceFilenames.csv, processedResults/…

e.g. ``1001_IEO_ANG_HI``. ``<sentence>`` is one of :data:`SENTENCES`, ``<emotion>`` one of
:data:`EMOTIONS` (ANG anger, DIS disgust, FEA fear, HAP happy, NEU neutral, SAD sad),
``<level>`` one of :data:`LEVELS` (LO low, MD medium, HI high, XX unspecified). Transcripts
are the fixed sentence texts; there are no alignment files. Speaker ids are the actor ids;
write them quoted in the config (``speakers: ["1001"]``), YAML would read 1001 as a number.
"""

from __future__ import annotations

import re
from pathlib import Path

from a2v.datasets.base import VIDEO_SUFFIXES, CorpusAdapter, list_videos, natural_key
from a2v.datasets.record import ClipRecord
from a2v.errors import MediaError

SENTENCES = {
    "IEO": "It's eleven o'clock",
    "TIE": "That is exactly what happened",
    "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about",
    "TAI": "The airplane is almost full",
    "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock",
    "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket",
    "ITS": "I think I've seen this before",
    "TSI": "The surface is slick",
    "WSI": "We'll stop in a couple of minutes",
}
"""Sentence id → the text the actors read."""
EMOTIONS = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
_NAME = re.compile(r"^(?P<actor>\d{4})_(?P<sentence>[A-Z]{3})_(?P<emotion>[A-Z]{3})_(?P<level>[A-Z]{2})$")


def sentence_words(sentence: str) -> tuple[str, ...]:
    """The lower-case words of a sentence id, apostrophes kept as in the CMU dictionary.

    ``"DFA"`` → ``("don't", "forget", "a", "jacket")``.

    Raises:
        KeyError: unknown sentence id.
    """
    return tuple(SENTENCES[sentence].lower().split())


def parse_name(stem: str) -> dict[str, str] | None:
    """``{"actor", "sentence", "emotion", "level"}`` of a CREMA-D file stem, or ``None`` when the
    stem does not follow the naming scheme (unknown sentence, emotion or level included)."""
    m = _NAME.match(stem)
    if m is None or m["sentence"] not in SENTENCES or m["emotion"] not in EMOTIONS or m["level"] not in LEVELS:
        return None
    return m.groupdict()


class CremaDAdapter(CorpusAdapter):
    """Index a CREMA-D folder (the repository's layout).

    Records: speaker = actor id (``1001``); clip id ``<sentence>_<emotion>_<level>``
    (``DFA_ANG_XX``); video from ``VideoFlash/``; ``audio`` = ``AudioWAV/<name>.wav`` when
    present; words of the sentence; meta ``{"sentence", "emotion", "intensity"}`` with the
    codes of the file name. Videos whose names do not follow the scheme go to ``ignored``.

    Args:
        root: the folder holding ``VideoFlash/`` (and ``AudioWAV/``).
        dataset: dataset name recorded in each :class:`ClipRecord`.
    """

    vocabulary = "crema_d"  # CREMA-D's 12 sentences

    def __init__(self, root: str | Path, dataset: str = "crema_d"):
        super().__init__(root, dataset)

    def _videos(self) -> list[Path]:
        folder = self.root / "VideoFlash"
        if not folder.is_dir():
            raise MediaError(folder, f"no VideoFlash/ folder in {self.root} (CREMA-D layout)")
        return list_videos(folder, VIDEO_SUFFIXES)

    def speakers(self) -> list[str]:
        """Actor ids with at least one well-named video, sorted.

        Raises:
            MediaError: ``VideoFlash/`` is missing.
        """
        return sorted({p["actor"] for v in self._videos() if (p := parse_name(v.stem))}, key=natural_key)

    def speaker_clips(self, speaker: str) -> list[ClipRecord]:
        """One actor's clips (see the class docstring).

        Raises:
            MediaError: ``VideoFlash/`` is missing or holds no video of ``speaker``.
        """
        records, seen = [], False
        for video in self._videos():
            if not video.stem.startswith(f"{speaker}_"):
                continue
            seen = True
            parts = parse_name(video.stem)
            if parts is None:
                self.ignore(video)
                continue
            audio = self.root / "AudioWAV" / f"{video.stem}.wav"
            records.append(ClipRecord(
                self.dataset, speaker, video.stem[len(speaker) + 1:], str(video), "", sentence_words(parts["sentence"]),
                str(audio) if audio.is_file() else "",
                {"sentence": parts["sentence"], "emotion": parts["emotion"], "intensity": parts["level"]},
            ))
        if not seen:
            raise MediaError(self.root / "VideoFlash", f"no video of speaker {speaker} in {self.root / 'VideoFlash'}")
        return records
