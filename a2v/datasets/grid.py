"""GRID audio-visual sentence corpus (Cooke et al. 2006; CC BY 4.0, doi:10.5281/zenodo.3625687).

Layout (as the per-speaker archives unpack): ``sN/<code>.mpg`` (25 fps, 3 s) and
``alignments/sN/<code>.align`` — word timings ``start end word`` per line, CRLF line endings,
unit 1/25000 s (1000 units = one video frame), tokens ``sil`` and ``sp`` for silence and short
pause. The clip code spells the sentence (command, colour, preposition, letter, digit, adverb),
so clips without an ``.align`` still have their words.
"""

from __future__ import annotations

import re
from pathlib import Path

from a2v.datasets.base import CorpusAdapter, is_clip_id, list_videos, missing_speaker, natural_key
from a2v.datasets.record import ClipRecord
from a2v.errors import MediaError

ALIGN_UNITS_PER_S = 25000.0
SILENCE_TOKENS = frozenset({"sil", "sp"})

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


def words_from_code(code: str) -> tuple[str, ...]:
    """The six words a GRID clip code spells, e.g. ``bbaf2n`` → bin blue at f two now.

    Raises:
        ValueError: not a GRID code.
    """
    if not _CODE.match(code):
        raise ValueError(f"{code!r} is not a GRID clip code")
    return (_COMMAND[code[0]], _COLOUR[code[1]], _PREP[code[2]], code[3], _DIGIT[code[4]], _ADVERB[code[5]])


class GridAdapter(CorpusAdapter):
    """Index a GRID folder (the corpus's own layout).

    Speakers are the ``sN`` folders; clip id = the video's stem (the GRID code, e.g.
    ``bgbn8n``). Videos whose stem is not a safe clip id go to ``ignored``.

    Args:
        root: folder holding ``sN/`` video folders and ``alignments/sN/``.
        dataset: dataset name recorded in each :class:`ClipRecord`.
    """

    def __init__(self, root: str | Path, dataset: str = "grid"):
        super().__init__(root, dataset)

    def speakers(self) -> list[str]:
        """Speaker folders present (``s1``, ``s2``…), in numeric order."""
        found = [p.name for p in self.root.iterdir() if p.is_dir() and re.fullmatch(r"s\d+", p.name)]
        return sorted(found, key=natural_key)

    def clips(self, speakers: list[str] | None = None) -> list[ClipRecord]:
        """Clip records of the given speakers (all when ``None``), sorted by speaker and clip.

        Words come from the ``.align`` file when there is one, else from the clip code.

        Raises:
            MediaError: a requested speaker folder is missing.
        """
        return super().clips(speakers)

    def speaker_clips(self, speaker: str) -> list[ClipRecord]:
        """One speaker's clips (see :meth:`clips`)."""
        folder = self.root / speaker
        if not folder.is_dir():
            raise missing_speaker(folder, speaker, self.root)
        records = []
        for video in list_videos(folder):
            if not is_clip_id(video.stem):
                self.ignore(video)
                continue
            align = self.root / "alignments" / speaker / f"{video.stem}.align"
            if align.is_file():
                words = tuple(w for _, _, w in parse_align(align) if w not in SILENCE_TOKENS)
            else:
                align = None
                words = words_from_code(video.stem) if _CODE.match(video.stem) else ()
            records.append(ClipRecord(self.dataset, speaker, video.stem, str(video), str(align) if align else "", words))
        return records
