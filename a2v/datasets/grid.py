"""GRID audio-visual sentence corpus (Cooke et al. 2006; CC BY 4.0, doi:10.5281/zenodo.3625687).

Layout (as the Zenodo record's archives unpack: ``sN.zip`` → ``sN/``, ``alignments.zip`` →
``alignments/sN/``): ``sN/<code>.mpg`` (25 fps, 3 s, MP2 audio 44.1 kHz stereo) and
``alignments/sN/<code>.align`` — word timings ``start end word`` per line, CRLF line endings,
unit 1/25000 s (1000 units = one video frame), tokens ``sil`` and ``sp`` for silence and short
pause. The clip code spells the sentence (command, colour, preposition, letter, digit, adverb),
so clips without an ``.align`` still have their words. The record's ``audio_25k.zip`` is not
used: its audio files are shorter than the videos (lhotse pull request #1501), so a2v takes the
audio from the video (the extract stage decodes it to mono 16 kHz with ffmpeg; a clip whose
audio ffmpeg cannot decode is skipped with a :class:`~a2v.errors.MediaError` naming the file).

Alignment folders are not trusted by name. In the Zenodo ``alignments.zip`` about a dozen
speakers' folders hold another speaker's alignments (lhotse pull requests #1501/#1502: s5↔s6,
s14↔s15, s18↔s19, s22↔s23, s26↔s27, s28↔s29, s32↔s33, a rotation among s10–s13, s20→s21).
:func:`match_alignment_folders` therefore gives each speaker the folder whose alignments fit
its videos (see there for the rule), and an ``.align`` whose words are not the words its
clip's code spells is not used for that clip (see :class:`GridAdapter`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from a2v.datasets.base import CorpusAdapter, is_clip_id, list_videos, missing_speaker, natural_key
from a2v.datasets.record import ClipRecord
from a2v.errors import ConfigError, MediaError

ALIGN_UNITS_PER_S = 25000.0
SILENCE_TOKENS = frozenset({"sil", "sp"})
ALIGNMENTS_DIR = "alignments"
"""The folder beside the ``sN/`` video folders that holds one alignment folder per speaker."""

WORD_ALIGNMENT_STATUS = ("ok", "missing", "mismatch", "unreadable", "unchecked")
"""Values of a GRID clip's ``meta["word_alignment"]``: ``ok`` (its ``.align`` is used and its
words are the code's), ``missing`` (no ``.align`` for it in its speaker's matched folder),
``mismatch`` (the ``.align`` spells other words than the code: not used), ``unreadable``
(malformed ``.align``: not used), ``unchecked`` (the clip id is not a GRID code, so the
``.align`` is used as it is)."""
REJECTED_STATUS = frozenset({"mismatch", "unreadable"})
"""Statuses of a clip whose ``.align`` exists but is not used (counted in ``preprocess_summary.tsv``)."""
WORD_ALIGNMENT_KEY = "word_alignment"
"""The ``meta`` key (index column ``meta``) that holds a clip's word-alignment status."""

_COMMAND = {"b": "bin", "l": "lay", "p": "place", "s": "set"}
_COLOUR = {"b": "blue", "g": "green", "r": "red", "w": "white"}
_PREP = {"a": "at", "b": "by", "i": "in", "w": "with"}
_DIGIT = {str(d): w for d, w in enumerate(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])}
_DIGIT["z"] = "zero"
_ADVERB = {"a": "again", "n": "now", "p": "please", "s": "soon"}
_CODE = re.compile(r"^[blps][bgrw][abiw][a-z][0-9z][anps]$")


def parse_align(path: str | Path) -> list[tuple[float, float, str]]:
    """Read a GRID ``.align`` file.

    Returns:
        ``(start_s, end_s, word)`` per line in seconds, silence tokens included.

    Raises:
        MediaError: unreadable or malformed file (names the line).
    """
    path = Path(path)
    out = []
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise MediaError(path, f"cannot read alignment ({exc})") from exc
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.strip().split()
        if not parts:
            continue
        if len(parts) != 3:
            raise MediaError(path, f"line {n}: expected 'start end word', got {line.strip()!r}")
        try:
            start, end = int(parts[0]), int(parts[1])
        except ValueError as exc:
            raise MediaError(path, f"line {n}: non-integer time in {line.strip()!r}") from exc
        out.append((start / ALIGN_UNITS_PER_S, end / ALIGN_UNITS_PER_S, parts[2].lower()))
    return out


def align_words(path: str | Path) -> tuple[str, ...]:
    """The spoken words of a GRID ``.align`` file (silence tokens left out), lower case.

    Raises:
        MediaError: unreadable or malformed file.
    """
    return tuple(w for _, _, w in parse_align(path) if w not in SILENCE_TOKENS)


def is_grid_code(text: str) -> bool:
    """Whether ``text`` is a GRID clip code (e.g. ``bgbn8n``)."""
    return _CODE.match(text) is not None


def alignment_rejected(record: ClipRecord) -> bool:
    """Whether a clip's word alignment exists but was not used (its ``meta`` status is in
    :data:`REJECTED_STATUS`); False for clips of corpora that do not record the status."""
    return record.meta.get(WORD_ALIGNMENT_KEY) in REJECTED_STATUS


def words_from_code(code: str) -> tuple[str, ...]:
    """The six words a GRID clip code spells, e.g. ``bbaf2n`` → bin blue at f two now.

    Raises:
        ValueError: not a GRID code.
    """
    if not _CODE.match(code):
        raise ValueError(f"{code!r} is not a GRID clip code")
    return (_COMMAND[code[0]], _COLOUR[code[1]], _PREP[code[2]], code[3], _DIGIT[code[4]], _ADVERB[code[5]])


@dataclass(frozen=True)
class FolderMatch:
    """The alignment folder chosen for one speaker by :func:`match_alignment_folders`.

    Attributes:
        speaker: the speaker (its video folder ``sN``).
        folder: name of the folder under ``alignments/`` whose files the speaker's clips use,
            or ``""`` when no folder qualifies.
        agree: clips of the speaker that ``folder`` holds an ``.align`` for whose words are the
            words of the clip's code.
        n_clips: the speaker's clips whose id is a GRID code.
        own_agree: the same count for the folder named like the speaker (0 when there is none).
    """

    speaker: str
    folder: str
    agree: int
    n_clips: int
    own_agree: int

    @property
    def remapped(self) -> bool:
        """Whether the speaker's alignments come from a folder named after another speaker."""
        return bool(self.folder) and self.folder != self.speaker


def match_alignment_folders(clips: dict[str, set[str]], folders: dict[str, dict[str, Path]], agrees,
                            min_coverage: float = 0.5) -> dict[str, FolderMatch]:
    """Give each speaker the alignment folder that fits its videos, one folder per speaker.

    **a2v:** the rule (GRID's documentation says nothing about mislabelled folders, so this is
    a2v's own). Each talker read 1000 sentences drawn at random from GRID's 64 000 (4 commands ×
    4 colours × 4 prepositions × 25 letters × 10 digits × 4 adverbs), so two talkers share only
    about 1000²/64 000 ≈ 16 clip codes, while a talker's own folder holds an ``.align`` for
    (nearly) every one of its clips. For a speaker V and a folder F the *agreement* is the number
    of V's clip codes for which F holds an ``.align`` of that name whose words are the words the
    code spells (so neither a shared code alone nor a corrupted file counts). Then:

    1. F is a candidate for V when its agreement is at least ``min_coverage`` of V's clips
       (rounded up, and at least 1);
    2. candidate pairs are taken by decreasing agreement (ties: the folder named like the
       speaker first, then natural order of speaker and folder), each speaker and each folder
       at most once;
    3. a speaker with no candidate gets no folder: its clips keep the words of their codes,
       without timings (this is the s20 case: its folder holds s21's alignments and s20's own
       are not in the record).

    Args:
        clips: ``{speaker: the speaker's clip ids that are GRID codes}``.
        folders: ``{folder name under alignments/: {clip code: .align path}}``.
        agrees: ``agrees(path, code) -> bool``: whether the ``.align`` at ``path`` spells the
            words of ``code`` (False for an unreadable file).
        min_coverage: the share of a speaker's clips a folder must agree on, in (0, 1].

    Returns:
        ``{speaker: FolderMatch}`` for every speaker of ``clips``.

    Raises:
        ValueError: ``min_coverage`` outside (0, 1].
    """
    if not 0.0 < min_coverage <= 1.0:
        raise ValueError(f"min_coverage must be in (0, 1], got {min_coverage}")
    score: dict[tuple[str, str], int] = {}
    for speaker, codes in clips.items():
        for name, files in folders.items():
            shared = sorted(codes & files.keys())
            score[speaker, name] = sum(bool(agrees(files[c], c)) for c in shared)
    candidates = []
    for (speaker, name), agree in score.items():
        need = max(1, math.ceil(min_coverage * len(clips[speaker])))
        if agree >= need:
            candidates.append((-agree, name != speaker, natural_key(speaker), natural_key(name), speaker, name))
    taken_speakers: dict[str, str] = {}
    taken_folders: set[str] = set()
    for *_, speaker, name in sorted(candidates):
        if speaker in taken_speakers or name in taken_folders:
            continue
        taken_speakers[speaker] = name
        taken_folders.add(name)
    out = {}
    for speaker, codes in clips.items():
        name = taken_speakers.get(speaker, "")
        out[speaker] = FolderMatch(speaker, name, score.get((speaker, name), 0) if name else 0, len(codes),
                                   score.get((speaker, speaker), 0))
    return out


class GridAdapter(CorpusAdapter):
    """Index a GRID folder (the corpus's own layout, as the Zenodo archives unpack).

    Speakers are the ``sN`` folders; clip id = the video's stem (the GRID code, e.g.
    ``bgbn8n``). Videos whose stem is not a safe clip id go to ``ignored``.

    Word alignments: each speaker's clips read the ``alignments/`` folder that
    :func:`match_alignment_folders` picks for it (usually the one of its own name; ``.align``
    files may also sit one level deeper, e.g. ``alignments/sN/align/``). Per clip, the
    ``.align`` named like the clip is used only if its words are the words of the clip's code;
    otherwise (or when there is none) the record's ``transcript`` is ``""`` and its words are the
    code's. The outcome is in ``meta["word_alignment"]`` (:data:`WORD_ALIGNMENT_STATUS`).

    After :meth:`clips`, ``notes`` holds one line per remapped folder, per speaker left without
    a folder, and per ``.align`` not used (naming the file and the cause), for the ingest stage
    to log; ``folder_matches`` holds the :class:`FolderMatch` of each speaker.

    Args:
        root: folder holding ``sN/`` video folders and ``alignments/sN/``.
        dataset: dataset name recorded in each :class:`ClipRecord`.
        min_alignment_coverage: ``min_coverage`` of :func:`match_alignment_folders` (a share of
            the speaker's clips, in (0, 1]).

    Raises:
        ConfigError: ``min_alignment_coverage`` outside (0, 1].
    """

    vocabulary = "grid"  # GRID's sentence grammar (command, colour, preposition, letter, digit, adverb)

    def __init__(self, root: str | Path, dataset: str = "grid", min_alignment_coverage: float = 0.5):
        super().__init__(root, dataset)
        if isinstance(min_alignment_coverage, bool) or not isinstance(min_alignment_coverage, (int, float)) \
                or not 0.0 < min_alignment_coverage <= 1.0:
            raise ConfigError(f"dataset {dataset!r}: grid option min_alignment_coverage must be a number in (0, 1], "
                              f"got {min_alignment_coverage!r}")
        self.min_alignment_coverage = float(min_alignment_coverage)
        self.notes: list[str] = []
        self.folder_matches: dict[str, FolderMatch] = {}
        self._folders: dict[str, dict[str, Path]] | None = None
        self._words: dict[Path, tuple[str, ...] | MediaError] = {}

    def speakers(self) -> list[str]:
        """Speaker folders present (``s1``, ``s2``…), in numeric order."""
        found = [p.name for p in self.root.iterdir() if p.is_dir() and re.fullmatch(r"s\d+", p.name)]
        return sorted(found, key=natural_key)

    def clips(self, speakers: list[str] | None = None) -> list[ClipRecord]:
        """Clip records of the given speakers (all when ``None``), sorted by speaker and clip.

        Matches alignment folders to the speakers first (``folder_matches``, ``notes`` and
        ``ignored`` are reset and refilled on each call).

        Raises:
            MediaError: a requested speaker folder is missing.
        """
        speakers = list(speakers or self.speakers())
        self.notes = []
        self.folder_matches = {}
        self._folders = None
        self._words = {}
        self._match(speakers)
        return super().clips(speakers)

    def speaker_clips(self, speaker: str) -> list[ClipRecord]:
        """One speaker's clips (see :meth:`clips`)."""
        folder = self.root / speaker
        if not folder.is_dir():
            raise missing_speaker(folder, speaker, self.root)
        if speaker not in self.folder_matches:
            self._match([speaker])
        files = self._alignment_folders().get(self.folder_matches[speaker].folder, {})
        records = []
        for video in list_videos(folder):
            code = video.stem
            if not is_clip_id(code):
                self.ignore(video)
                continue
            align = files.get(code)
            words = words_from_code(code) if is_grid_code(code) else ()
            status = "missing"
            if align is not None:
                got = self._align_words(align)
                if isinstance(got, MediaError):
                    status = "unreadable"
                    self.notes.append(f"{speaker}/{code}: {got}: alignment not used, words from the clip code")
                elif not is_grid_code(code):
                    status, words = "unchecked", got
                elif got != words:
                    status = "mismatch"
                    self.notes.append(f"{speaker}/{code}: {align} reads {' '.join(got)!r} but the clip code spells "
                                      f"{' '.join(words)!r}: alignment not used, words from the clip code")
                else:
                    status = "ok"
                if status not in ("ok", "unchecked"):
                    align = None
            records.append(ClipRecord(self.dataset, speaker, code, str(video), str(align) if align else "", words,
                                      meta={WORD_ALIGNMENT_KEY: status}))
        return records

    # --- alignment folders ----------------------------------------------------------------------

    def _alignment_folders(self) -> dict[str, dict[str, Path]]:
        """``{folder name: {clip code: .align path}}`` of ``alignments/`` (hidden and ``__MACOSX``
        folders left out; ``.align`` files found at any depth below a folder)."""
        if self._folders is None:
            self._folders = {}
            base = self.root / ALIGNMENTS_DIR
            if base.is_dir():
                for sub in sorted(base.iterdir(), key=lambda p: natural_key(p.name)):
                    if not sub.is_dir() or sub.name.startswith((".", "__")):
                        continue
                    files: dict[str, Path] = {}
                    for path in sorted(sub.rglob("*.align")):
                        if path.is_file() and not any(p.startswith(".") for p in path.relative_to(sub).parts):
                            files.setdefault(path.stem, path)
                    self._folders[sub.name] = files
        return self._folders

    def _align_words(self, path: Path) -> tuple[str, ...] | MediaError:
        if path not in self._words:
            try:
                self._words[path] = align_words(path)
            except MediaError as exc:
                self._words[path] = exc
        return self._words[path]

    def _agrees(self, path: Path, code: str) -> bool:
        got = self._align_words(path)
        return not isinstance(got, MediaError) and got == words_from_code(code)

    def _match(self, speakers: list[str]) -> None:
        """Match alignment folders to ``speakers`` (those with a video folder) and note remaps."""
        folders = self._alignment_folders()
        clips = {}
        for speaker in speakers:
            if speaker in self.folder_matches or not (self.root / speaker).is_dir():
                continue
            clips[speaker] = {v.stem for v in list_videos(self.root / speaker) if is_grid_code(v.stem)}
        if not clips:
            return
        # folders already given to speakers matched earlier are not offered again
        used = {m.folder for m in self.folder_matches.values() if m.folder}
        offered = {name: files for name, files in folders.items() if name not in used}
        matches = match_alignment_folders(clips, offered, self._agrees, self.min_alignment_coverage)
        base = self.root / ALIGNMENTS_DIR
        for speaker, m in matches.items():
            self.folder_matches[speaker] = m
            own = (f"{ALIGNMENTS_DIR}/{speaker} agrees on {m.own_agree}" if speaker in folders
                   else f"there is no {ALIGNMENTS_DIR}/{speaker}")
            if m.remapped:
                self.notes.append(f"{base / m.folder}: holds the word alignments of speaker {speaker} "
                                  f"({m.agree} of its {m.n_clips} clips agree with their codes; {own}): "
                                  f"remapped to {speaker}")
            elif not m.folder and m.n_clips and folders:
                self.notes.append(f"{base}: no folder agrees with at least {self.min_alignment_coverage:.0%} of "
                                  f"speaker {speaker}'s {m.n_clips} clips ({own}): its clips get the words of "
                                  f"their codes, without timings")
