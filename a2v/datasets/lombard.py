"""Audio-visual Lombard GRID corpus (Alghamdi, Maddock, Marxer, Barker & Brown 2018; CC BY 4.0).

Source: N. Alghamdi, S. Maddock, R. Marxer, J. Barker, G. J. Brown, "A corpus of audio-visual
Lombard speech with frontal and profile views", J. Acoust. Soc. Am. 143(6), EL523–EL529
(2018), doi:10.1121/1.5042758; distributed by the University of Sheffield
(http://spandh.dcs.shef.ac.uk/avlombard/) under CC BY 4.0.

Content: 54 talkers each read 100 GRID sentences (see :mod:`a2v.datasets.grid`), 50 in quiet
("plain" speech) and 50 while hearing speech-shaped noise over headphones (Lombard speech),
filmed by a front and a side (profile) camera.

Layout: one archive per part (``lombardgrid_front.zip``, ``lombardgrid_side.zip``,
``lombardgrid_audio.zip``, ``lombardgrid_alignment.zip``), each unpacking under a common
``lombardgrid/`` folder::

    lombardgrid/front/<spk>_<cond>_<code>.mov       front camera
    lombardgrid/side/<spk>_<cond>_<code>.mov        side camera
    lombardgrid/audio/<spk>_<cond>_<code>.wav       the speech microphone
    lombardgrid/alignment/<spk>_<cond>_<code>.json  phone alignment of the utterance

``<spk>`` is the talker id ``sN`` (speaker ids are ``s2``…``s55``), ``<cond>`` is ``l``
(Lombard) or ``p`` (plain), ``<code>`` is the six-letter GRID code that spells the sentence,
e.g. ``s2_l_bbim3a``. The corpus folder given to the adapter may be ``lombardgrid/`` itself
or the folder holding it. A few recordings were misread and carry that in their name:
``<spk>_<cond>_<prompted>_WRONG_<spoken>`` where ``<spoken>`` is the GRID code actually
said, or a non-code such as ``#sil`` when nothing was said; the first are indexed with the
spoken sentence, the second are ignored.

Alignment files are JSON objects ``{"<spk>_<cond>_<code>": [{"phone": "b_B", "offset": 0.87,
"duration": 0.06}, ...]}``: one entry per phone, times in seconds, the phone labels carrying
a word-position suffix (``_B`` begin, ``_I`` inside, ``_E`` end, ``_S`` single-phone word);
phones without a suffix are silence. The spoken words are those of the GRID code; the
alignment is parsed to check it holds one word per code word (else it is set aside in
``ignored`` and the clip indexed without it).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from a2v.datasets.base import CorpusAdapter, natural_key
from a2v.datasets.grid import _CODE, words_from_code
from a2v.datasets.record import ClipRecord
from a2v.errors import ConfigError, MediaError

VIEWS = ("front", "side")
CONDITIONS = {"l": "lombard", "p": "plain"}
_NAME = re.compile(r"^(?P<speaker>s\d+)_(?P<cond>[lp])_(?P<code>[a-z0-9]+)(?:_WRONG_(?P<spoken>.+))?$")
_POSITION = re.compile(r"^(?P<phone>.+)_(?P<pos>[BIES])$")


def parse_alignment(path: str | Path) -> list[tuple[float, float, str]]:
    """Read a Lombard GRID alignment file (JSON, see the module docstring).

    Returns:
        ``(start_s, end_s, phone)`` per phone in file order, phone labels as written
        (position suffix kept, silence included).

    Raises:
        MediaError: unreadable file, not JSON, or entries without ``phone``/``offset``/
            ``duration``.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MediaError(path, f"cannot read alignment ({exc})") from exc
    if not isinstance(data, dict) or not data:
        raise MediaError(path, "alignment is not a JSON object {utterance: [phones]}")
    entries = data.get(path.stem, next(iter(data.values())) if len(data) == 1 else None)
    if not isinstance(entries, list):
        raise MediaError(path, f"alignment has no phone list for {path.stem!r}")
    out = []
    for n, entry in enumerate(entries):
        try:
            start = float(entry["offset"])
            out.append((start, start + float(entry["duration"]), str(entry["phone"])))
        except (KeyError, TypeError, ValueError) as exc:
            raise MediaError(path, f"phone {n}: expected phone/offset/duration, got {entry!r}") from exc
    return out


def word_spans(phones: list[tuple[float, float, str]]) -> list[tuple[float, float]]:
    """Group position-tagged phones into words.

    Args:
        phones: ``(start_s, end_s, phone)`` as :func:`parse_alignment` returns.

    Returns:
        ``(start_s, end_s)`` of each word, in order; untagged (silence) phones are skipped.

    Raises:
        ValueError: the position tags do not nest (e.g. ``_I`` outside a word).
    """
    spans: list[tuple[float, float]] = []
    open_start: float | None = None
    for start, end, phone in phones:
        m = _POSITION.match(phone)
        if m is None:
            continue
        pos = m["pos"]
        if pos == "S" or pos == "B":
            if open_start is not None:
                raise ValueError(f"phone {phone!r} at {start:.3f} s starts a word inside another")
            if pos == "S":
                spans.append((start, end))
            else:
                open_start = start
        else:
            if open_start is None:
                raise ValueError(f"phone {phone!r} at {start:.3f} s continues no word")
            if pos == "E":
                spans.append((open_start, end))
                open_start = None
    if open_start is not None:
        raise ValueError("the last word has no end phone")
    return spans


class LombardGridAdapter(CorpusAdapter):
    """Index a Lombard GRID folder (the corpus's own layout, one camera view).

    Records: speaker ``sN``; clip id ``<cond>_<code>`` (``l_bbim3a``; the whole name after the
    speaker for a ``_WRONG_`` file); video from ``<view>/``; ``audio`` = ``audio/<name>.wav``
    when present; ``transcript`` = ``alignment/<name>.json`` when present and consistent;
    words from the GRID code; meta ``{"condition": "lombard"|"plain", "view": view,
    "utterance": code}``, plus ``"prompted"`` (the code in the name) for a ``_WRONG_`` file.
    Videos whose names do not follow the scheme, ``_WRONG_`` files with nothing said, and
    alignments that do not fit their clip go to ``ignored``.

    Args:
        root: ``lombardgrid/`` or the folder holding it.
        dataset: dataset name recorded in each :class:`ClipRecord`.
        view: camera, ``front`` (default) or ``side``.

    Raises:
        ConfigError: unknown view.
    """

    vocabulary = "grid"  # Lombard GRID speakers read GRID sentences

    def __init__(self, root: str | Path, dataset: str = "lombard_grid", view: str = "front"):
        super().__init__(root, dataset)
        if view not in VIEWS:
            raise ConfigError(f"lombard_grid adapter: view must be one of {list(VIEWS)}, got {view!r}")
        self.view = view

    @property
    def corpus_dir(self) -> Path:
        """The folder holding ``front/``, ``side/``, ``audio/``, ``alignment/``."""
        nested = self.root / "lombardgrid"
        return nested if not (self.root / self.view).is_dir() and nested.is_dir() else self.root

    def _videos(self) -> list[Path]:
        folder = self.corpus_dir / self.view
        if not folder.is_dir():
            raise MediaError(folder, f"no {self.view}/ camera folder in {self.root} (Lombard GRID layout)")
        return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))

    def speakers(self) -> list[str]:
        """Talker ids with videos in the chosen view (``s2``, ``s3``…), in numeric order.

        Raises:
            MediaError: the view folder is missing.
        """
        found = {m["speaker"] for p in self._videos() if p.suffix.lower() == ".mov" and (m := _NAME.match(p.stem))}
        return sorted(found, key=natural_key)

    def speaker_clips(self, speaker: str) -> list[ClipRecord]:
        """One talker's clips (see the class docstring).

        Raises:
            MediaError: the view folder is missing or holds no video of ``speaker``.
        """
        base = self.corpus_dir
        records, seen = [], False
        for video in self._videos():
            if not video.name.startswith(f"{speaker}_"):
                continue
            m = _NAME.match(video.stem)
            if m is None or video.suffix.lower() != ".mov":
                self.ignore(video)
                continue
            seen = True
            code = m["spoken"] if m["spoken"] is not None else m["code"]
            if not _CODE.match(code):  # e.g. ``_WRONG_#sil``: nothing was said
                self.ignore(video)
                continue
            words = words_from_code(code)
            align = base / "alignment" / f"{video.stem}.json"
            if align.is_file():
                try:
                    n_words = len(word_spans(parse_alignment(align)))
                except (MediaError, ValueError):
                    n_words = -1
                if n_words != len(words):
                    self.ignore(align)
                    align = None
            else:
                align = None
            audio = base / "audio" / f"{video.stem}.wav"
            meta = {"condition": CONDITIONS[m["cond"]], "view": self.view, "utterance": code}
            if m["spoken"] is not None:
                meta["prompted"] = m["code"]
            records.append(ClipRecord(
                self.dataset, speaker, video.stem[len(speaker) + 1:], str(video), str(align) if align else "", words,
                str(audio) if audio.is_file() else "", meta,
            ))
        if not seen:
            raise MediaError(base / self.view, f"no video of speaker {speaker} in {base / self.view}")
        return sorted(records, key=lambda r: r.clip_id)
