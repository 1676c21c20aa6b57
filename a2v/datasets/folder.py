"""A plain folder of one's own videos, with optional transcripts and separate audio.

Layout::

    <root>/<speaker>/<any/sub/folders>/<name>.<mp4|mov|avi|mkv|mpg|mpeg|webm|flv>
    <root>/<name>.mp4                      videos directly in the root: speaker ``default``
    beside a video, optionally:
    <name>.txt                             what is said (plain UTF-8 text)
    <name>.wav                             the audio, when it was recorded apart from the video

Speaker = the first-level sub-folder's name (``default`` for videos directly in the root);
clip id = the video's path relative to its speaker folder, without the suffix, ``/``
replaced by ``__`` (``take1/intro.mp4`` → ``take1__intro``). Both must use the safe
characters of :mod:`a2v.datasets.base` (speaker ``[A-Za-z0-9_]+``, clip ``[A-Za-z0-9_-]+``) and
clip ids must be unique within a speaker: anything else is an error naming the file, to be
fixed by renaming (the adapter does not rename silently, so ids stay traceable to files).

Transcript words: the text lower-cased, split into runs of letters, digits and apostrophes
(all other characters, punctuation and ``-`` included, separate words); quotes, i.e.
apostrophes at either end of a run, are dropped: ``"Don't stop," she said.`` →
``don't stop she said``. Curly apostrophes (’) count as ``'``. Numbers are kept as digits, so
spell them out if the words are to be looked up in a pronouncing dictionary.

Hidden files and folders (names starting with ``.``) are skipped; other files that are
neither a video nor a video's ``.txt``/``.wav`` go to ``ignored``.
"""

from __future__ import annotations

import re
from pathlib import Path

from a2v.datasets.base import VIDEO_SUFFIXES, CorpusAdapter, is_speaker_id, list_videos
from a2v.datasets.record import ClipRecord
from a2v.errors import MediaError

DEFAULT_SPEAKER = "default"
"""Speaker id of the videos lying directly in the root."""
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]*)*")


def transcript_words(text: str) -> tuple[str, ...]:
    """Words of a transcript (see the module docstring for the rule).

    Returns:
        lower-case tokens, apostrophes inside words kept.
    """
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    return tuple(tok.strip("'") for tok in _TOKEN.findall(text) if tok.strip("'"))


class FolderAdapter(CorpusAdapter):
    """Index a folder of videos (see the module docstring for the layout and the id rules).

    Records: ``transcript`` = the ``.txt`` beside the video when present, with its words;
    ``audio`` = the ``.wav`` beside the video when present; meta ``{"path": path relative to
    the root}``.

    Args:
        root: the folder.
        dataset: dataset name recorded in each :class:`ClipRecord`.
    """

    def __init__(self, root: str | Path, dataset: str = "folder"):
        super().__init__(root, dataset)

    def _check_root(self) -> None:
        if not self.root.is_dir():
            raise MediaError(self.root, "video folder not found")

    def speakers(self) -> list[str]:
        """First-level folders holding at least one video (any depth), plus ``default`` when
        videos lie directly in the root; sorted, ``default`` first.

        Raises:
            MediaError: the root is not a folder.
        """
        self._check_root()
        found = sorted(p.name for p in self.root.iterdir()
                       if p.is_dir() and not p.name.startswith(".") and list_videos(p, VIDEO_SUFFIXES, recursive=True))
        if list_videos(self.root, VIDEO_SUFFIXES) and DEFAULT_SPEAKER not in found:
            found.insert(0, DEFAULT_SPEAKER)
        return found

    def speaker_clips(self, speaker: str) -> list[ClipRecord]:
        """One speaker's clips, sorted by clip id.

        Raises:
            MediaError: no such speaker folder; a speaker or clip id with unsafe characters;
                two videos giving one clip id; an unreadable transcript (each names the file).
        """
        self._check_root()
        folder = self.root / speaker
        sources: list[tuple[Path, Path]] = []  # (video, folder its clip id is relative to)
        if folder.is_dir() and not speaker.startswith("."):
            if not is_speaker_id(speaker):
                raise MediaError(folder, f"speaker folder name {speaker!r} has characters outside [A-Za-z0-9_]; rename it")
            sources += [(v, folder) for v in list_videos(folder, VIDEO_SUFFIXES, recursive=True)]
            self._collect_ignored(folder, recursive=True)
        if speaker == DEFAULT_SPEAKER:
            sources += [(v, self.root) for v in list_videos(self.root, VIDEO_SUFFIXES)]
            self._collect_ignored(self.root, recursive=False)
        if not sources:
            raise MediaError(folder, f"speaker folder for {speaker} not found in {self.root} (or it holds no video)")
        records = [self._record(speaker, video, base) for video, base in sources]
        return sorted(records, key=lambda r: r.clip_id)

    def _record(self, speaker: str, video: Path, base: Path) -> ClipRecord:
        rel = video.relative_to(base).with_suffix("")
        clip = "__".join(rel.parts)
        if not re.fullmatch(r"[A-Za-z0-9_-]+", clip):
            bad = sorted(set(re.sub(r"[A-Za-z0-9_-]", "", "".join(rel.parts))))
            raise MediaError(video, f"clip id {clip!r} would contain {''.join(bad)!r}: only A-Z a-z 0-9 _ - are allowed in "
                                    "video and sub-folder names; rename the file")
        txt, wav = video.with_suffix(".txt"), video.with_suffix(".wav")
        words: tuple[str, ...] = ()
        if txt.is_file():
            try:
                words = transcript_words(txt.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError) as exc:
                raise MediaError(txt, f"cannot read transcript ({exc})") from exc
        return ClipRecord(
            self.dataset, speaker, clip, str(video), str(txt) if txt.is_file() else "", words,
            str(wav) if wav.is_file() else "", {"path": video.relative_to(self.root).as_posix()},
        )

    def _collect_ignored(self, folder: Path, recursive: bool) -> None:
        """Put files that are neither videos nor a video's transcript/audio into ``ignored``."""
        videos = {v.with_suffix("") for v in list_videos(folder, VIDEO_SUFFIXES, recursive=recursive)}
        for path in sorted(folder.rglob("*") if recursive else folder.iterdir()):
            if not path.is_file() or any(part.startswith(".") for part in path.relative_to(folder).parts):
                continue
            suffix = path.suffix.lower()
            if suffix in VIDEO_SUFFIXES:
                continue
            if suffix in (".txt", ".wav") and path.with_suffix("") in videos:
                continue
            self.ignore(path)
