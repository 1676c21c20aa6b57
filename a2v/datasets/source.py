"""Where a dataset's files come from: a local folder, a local archive, or a URL.

One config key (``datasets.<name>.source``) names any of the three, or a list of them. A source
may contain ``{speaker}`` (e.g. ``https://zenodo.org/records/3625687/files/{speaker}.zip``): it
stands for one source per speaker of the dataset (``speakers`` + ``unseen_speakers``).

Fetching (:func:`fetch`, the ``download`` stage) is split from indexing (the ``ingest`` stage):

* a URL is downloaded by :func:`download` into ``<cache>/downloads/<file name>``: the bytes go
  to ``<file name>.part``, kept across runs, and a rerun asks the server for the rest
  (``Range``); transient failures (connection errors, time-outs, short reads, HTTP 5xx, 408,
  429) are retried with exponential back-off; the size announced by the server and the
  ``sha256`` of the config are checked before the file is renamed to its final name;
* archives (zip, tar, tar.gz) are unpacked safely into ``<cache>/parts/<file name>``: entries
  with absolute paths, ``..`` components, or links are rejected (tar also through Python's
  ``"data"`` extraction filter) and nothing is written outside the destination;
* the unpacked parts are merged (hard links, else copies) into ``<cache>/extracted``, the corpus
  folder the adapter indexes; a single local folder is used in place;
* ``<cache>/manifest.tsv`` lists every fetched file: source, local path, bytes, sha256.

:func:`resolve_source` with ``offline=True`` (the ``ingest`` stage) finds the fetched corpus
folder without any network I/O.
"""

from __future__ import annotations

import csv
import hashlib
import http.client
import logging
import os
import re
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path, PurePosixPath

from a2v.errors import A2VError, ArchiveError, ConfigError

_DONE = ".a2v_extracted"
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)\s*$", re.IGNORECASE)
MANIFEST_COLUMNS = ("source", "local", "bytes", "sha256")

_log = logging.getLogger("a2v.source")


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://", "ftp://"))


def sha256sum(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _sidecar(path: Path) -> Path:
    return path.with_name(f"{path.name}.sha256")


def cached_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a downloaded file, remembered in ``<path>.sha256`` (digest, size in bytes,
    mtime in ns) so that reruns do not hash multi-GB archives again; recomputed whenever the
    file's size or mtime differ from the remembered ones."""
    path = Path(path)
    st = path.stat()
    side = _sidecar(path)
    try:
        digest, size, mtime = side.read_text().split()
        if int(size) == st.st_size and int(mtime) == st.st_mtime_ns and len(digest) == 64:
            return digest
    except (OSError, ValueError):
        pass
    digest = sha256sum(path)
    tmp = side.with_name(f".{side.name}.tmp")
    tmp.write_text(f"{digest} {st.st_size} {st.st_mtime_ns}\n")
    os.replace(tmp, side)
    return digest


# --- download ---------------------------------------------------------------------------------


class _Transient(Exception):
    """A failure worth retrying (the .part is kept and the next attempt resumes it)."""

    def __init__(self, message: str, retry_after_s: float | None = None):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class _Restart(Exception):
    """The .part does not fit what the server has: start again from byte 0."""


def _parse_content_range(value: str | None) -> tuple[int | None, int | None, int | None] | None:
    """``bytes 100-199/1000`` → (100, 199, 1000); ``bytes */1000`` → (None, None, 1000);
    ``*`` total → None; unparsable or absent → None."""
    if not value:
        return None
    m = _CONTENT_RANGE.match(value)
    if not m:
        return None
    start, end, total = m.groups()
    return (int(start) if start else None, int(end) if end else None, int(total) if total != "*" else None)


def _retry_after(headers, cap_s: float) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), cap_s)


def _attempt(url: str, part: Path, timeout_s: float, chunk_bytes: int, max_backoff_s: float, log: logging.Logger) -> int:
    """One HTTP request: append the rest of ``url`` to ``part``; returns the complete size in bytes.

    Raises:
        _Transient: retry (resume from what ``part`` now holds).
        _Restart: ``part`` does not fit the server's file.
        A2VError: a client error (HTTP 4xx other than 408 and 429): retrying cannot help.
    """
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "a2v-download/1 (python urllib)", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        resp = urllib.request.urlopen(request, timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        code, reason, hdrs = exc.code, exc.reason, exc.headers
        exc.close()
        if code == 416 and offset:
            cr = _parse_content_range(hdrs.get("Content-Range") if hdrs else None)
            if cr is not None and cr[2] == offset:
                return offset  # the .part already holds the whole file
            raise _Restart(f"HTTP 416 for bytes {offset}- (server's size {cr[2] if cr else 'unknown'})")
        if code in (408, 429) or code >= 500:
            raise _Transient(f"HTTP {code} {reason}", _retry_after(hdrs, max_backoff_s)) from None
        raise A2VError(f"{url}: HTTP {code} {reason} (client error, not retried)") from None
    except urllib.error.URLError as exc:
        raise _Transient(f"{exc.reason}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise _Transient(f"{type(exc).__name__}: {exc}") from None

    with resp:
        status = getattr(resp, "status", None) or 200
        if status == 206:
            cr = _parse_content_range(resp.headers.get("Content-Range"))
            if cr is None or cr[0] != offset:
                raise _Restart(f"asked for bytes {offset}-, server sent Content-Range {resp.headers.get('Content-Range')!r}")
            total = cr[2] if cr[2] is not None else None
            mode = "ab"
        else:
            if offset:
                log.info("%s: server ignored the Range request (HTTP %d); restarting from byte 0", url, status)
            offset, mode = 0, "wb"
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        from tqdm import tqdm

        with open(part, mode) as out, tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                                           desc=part.name.removesuffix(".part"), file=sys.stderr, mininterval=5.0,
                                           ascii=True, leave=False) as bar:
            # read1: whatever has arrived (up to chunk_bytes), so that bytes received before a
            # failure are on disk for the next attempt (read() would wait for a full chunk)
            read = getattr(resp, "read1", resp.read)
            try:
                while block := read(chunk_bytes):
                    out.write(block)
                    bar.update(len(block))
            except (OSError, http.client.HTTPException) as exc:  # IncompleteRead, reset, time-out
                raise _Transient(f"connection lost after byte {out.tell()} ({type(exc).__name__}: {exc})") from None
    size = part.stat().st_size
    if total is not None and size < total:
        raise _Transient(f"short read: {size} of {total} bytes")
    if total is not None and size > total:
        raise _Restart(f"{size} bytes on disk, more than the server's {total}")
    return size


def download(url: str, dest: str | Path, sha256: str | None = None, *, timeout_s: float = 60.0, attempts: int = 5,
             backoff_s: float = 1.0, max_backoff_s: float = 60.0, chunk_bytes: int = 1 << 20,
             log: logging.Logger | None = None) -> Path:
    """Download ``url`` to ``dest``, resumably; skip if ``dest`` is already complete.

    The bytes go to ``<dest>.part``, which is kept when a run fails or is killed: the next
    attempt (or the next run) sends ``Range: bytes=<size of .part>-`` and appends when the server
    answers 206, or starts again from byte 0 when it answers 200 (no range support) or when
    416 / the ``Content-Range`` shows the .part does not fit. Transient failures (connection
    errors, time-outs, short reads, HTTP 5xx, 408, 429) are retried after ``backoff_s * 2**k``
    seconds (at most ``max_backoff_s``, or the server's ``Retry-After`` up to that cap); other
    HTTP 4xx fail at once. When the server announced a size (``Content-Length`` of a 200,
    ``Content-Range`` of a 206) the file must have it; ``sha256`` is then checked, and only a
    complete, verified file is renamed to ``dest`` (atomic within the folder). An existing
    ``dest`` is trusted (it was only ever written complete) unless its sha256 differs; a
    verified digest is remembered in ``<dest>.sha256`` (see :func:`cached_sha256`).

    Args:
        url: http(s) or ftp URL.
        dest: final path of the file.
        sha256: expected hex digest, or None to skip the check.
        timeout_s: socket time-out per connect/read, in seconds.
        attempts: requests made before giving up (>= 1).
        backoff_s: delay before the first retry, in seconds; doubled after each failure.
        max_backoff_s: upper bound of one delay, in seconds.
        chunk_bytes: read size, in bytes.
        log: where retries are reported (default: the ``a2v.source`` logger).

    Returns:
        ``dest``.

    Raises:
        A2VError: a client error (names the URL and the HTTP status), every attempt failed
            (the .part is kept for the next run), or a checksum mismatch (names the URL and both
            digests; the .part is deleted and ``dest`` is not written).
    """
    log = log or _log
    dest = Path(dest)
    if dest.is_file():
        if sha256 is None or cached_sha256(dest) == sha256:
            return dest
        log.warning("%s: sha256 differs from the config's, downloading %s again", dest, url)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f"{dest.name}.part")
    failures, restarted = 0, False
    while True:
        retry_after = None
        try:
            size = _attempt(url, part, timeout_s, chunk_bytes, max_backoff_s, log)
            break
        except _Restart as exc:
            part.unlink(missing_ok=True)
            log.warning("%s: %s; starting again from byte 0", url, exc)
            if not restarted:
                restarted = True
                continue
            last = exc
        except _Transient as exc:
            last, retry_after = exc, exc.retry_after_s
        failures += 1
        have = part.stat().st_size if part.exists() else 0
        if failures >= attempts:
            raise A2VError(f"{url}: download failed after {attempts} attempts ({last}); "
                           f"{have} bytes kept in {part}, a rerun resumes from there")
        delay = min(backoff_s * 2 ** (failures - 1), max_backoff_s)
        if retry_after is not None:
            delay = max(delay, retry_after)
        log.warning("%s: %s; retry %d/%d in %.3g s (resuming at byte %d)", url, last, failures, attempts - 1, delay, have)
        time.sleep(delay)
    digest = sha256sum(part) if sha256 is not None else None
    if sha256 is not None and digest != sha256:
        part.unlink(missing_ok=True)
        raise A2VError(f"{url}: checksum mismatch (sha256 {digest}, expected {sha256}); partial file removed")
    os.replace(part, dest)
    if digest is not None:
        st = dest.stat()
        _sidecar(dest).write_text(f"{digest} {st.st_size} {st.st_mtime_ns}\n")
    log.info("%s: %d bytes -> %s", url, size, dest)
    return dest


# --- archives ---------------------------------------------------------------------------------


def _check_member_name(archive: Path, name: str) -> None:
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise ArchiveError(f"{archive}: unsafe entry {name!r} (absolute path)")
    if ".." in pure.parts:
        raise ArchiveError(f"{archive}: unsafe entry {name!r} ('..' component)")


def safe_extract(archive: str | Path, dest: str | Path) -> Path:
    """Unpack a zip or tar archive into ``dest`` after checking every entry.

    Extraction goes to a temporary folder beside ``dest`` that is renamed when complete, so a
    rerun after a kill starts clean; an already extracted ``dest`` is returned as is.

    Raises:
        ArchiveError: corrupt archive, unsupported format, or an unsafe entry (named).
    """
    archive, dest = Path(archive), Path(dest)
    if (dest / _DONE).is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    _check_member_name(archive, info.filename)
                    if (info.external_attr >> 16) & 0o170000 == 0o120000:
                        raise ArchiveError(f"{archive}: unsafe entry {info.filename!r} (symbolic link)")
                bad = zf.testzip()
                if bad is not None:
                    raise ArchiveError(f"{archive}: corrupt member {bad!r} (CRC mismatch)")
                zf.extractall(tmp)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                for member in tf.getmembers():
                    _check_member_name(archive, member.name)
                    if member.issym() or member.islnk():
                        raise ArchiveError(f"{archive}: unsafe entry {member.name!r} (link to {member.linkname!r})")
                tf.extractall(tmp, filter="data")
        else:
            raise ArchiveError(f"{archive}: not a zip or tar archive")
        (tmp / _DONE).write_text(str(archive))
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        raise ArchiveError(f"{archive}: corrupt archive ({exc})") from exc
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


# --- sources ----------------------------------------------------------------------------------


def expand_sources(source: str | list[str], speakers: list[str] | None = None) -> list[str]:
    """The source list with every ``{speaker}`` template expanded over ``speakers`` (in order).

    Raises:
        ConfigError: a template but no speakers, or a placeholder other than ``{speaker}``.
    """
    out: list[str] = []
    for item in [source] if isinstance(source, str) else list(source):
        names = set(_PLACEHOLDER.findall(item))
        if names - {"speaker"}:
            raise ConfigError(f"dataset source {item!r}: unknown placeholder(s) {sorted(names - {'speaker'})}; only {{speaker}} is expanded")
        if "speaker" in names:
            if not speakers:
                raise ConfigError(f"dataset source {item!r} is a {{speaker}} template but the dataset lists no speakers")
            out.extend(item.replace("{speaker}", s) for s in dict.fromkeys(speakers))
        else:
            out.append(item)
    return list(dict.fromkeys(out))


def _file_name(item: str) -> str:
    """The local file name of a source: the last path component of a URL or a path."""
    if is_url(item):
        name = urllib.parse.unquote(PurePosixPath(urllib.parse.urlsplit(item).path).name)
    else:
        name = Path(item).name
    name = name.replace("/", "_").replace("\\", "_")
    return name if name not in ("", ".", "..") else "download"


def _local_names(items: list[str]) -> dict[str, str]:
    """A distinct local file name per source; same-named files from different URLs get a hash prefix."""
    names = {item: _file_name(item) for item in items}
    counts: dict[str, int] = {}
    for name in names.values():
        counts[name] = counts.get(name, 0) + 1
    return {item: name if counts[name] == 1 else f"{hashlib.sha1(item.encode()).hexdigest()[:8]}_{name}"
            for item, name in names.items()}


def _expected_sha(sha256: dict[str, str] | None, item: str, name: str) -> str | None:
    sha256 = sha256 or {}
    return sha256.get(item) or sha256.get(_file_name(item)) or sha256.get(name)


@dataclass(frozen=True)
class FetchedFile:
    """One row of the manifest: where a file came from and what it is locally."""

    source: str  # URL or the path as configured
    local: Path
    bytes: int
    sha256: str  # "" for a folder (its files are not hashed)


def _resolve(source: str | list[str], cache_dir: Path, sha256: dict[str, str] | None, speakers: list[str] | None, *,
             offline: bool, with_manifest: bool, log: logging.Logger, download_options: dict) -> tuple[Path, list[FetchedFile]]:
    items = expand_sources(source, speakers)
    if len(items) == 1 and not is_url(items[0]) and Path(items[0]).is_dir():
        folder = Path(items[0])
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if with_manifest else 0
        return folder, [FetchedFile(items[0], folder.resolve(), size, "")]
    names = _local_names(items)
    root = cache_dir / "extracted"
    fetched: list[FetchedFile] = []
    for item in items:
        name, expected = names[item], _expected_sha(sha256, item, names[item])
        part_dir = cache_dir / "parts" / name
        if is_url(item):
            path = cache_dir / "downloads" / name
            if offline:
                if not (part_dir / _DONE).is_file() and not path.is_file():
                    raise A2VError(f"{item}: not downloaded yet (expected {path}); run `a2v download` "
                                   f"(the Snakemake rule `download`) for this dataset first")
            else:
                download(item, path, expected, log=log, **download_options)
        else:
            path = Path(item)
            if not path.exists():
                raise A2VError(f"{path}: dataset source not found")
        if path.is_dir():
            _merge_tree(path, root)
            if with_manifest:
                size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
                fetched.append(FetchedFile(item, path.resolve(), size, ""))
            continue
        digest = ""
        if path.is_file() and not offline:
            digest = cached_sha256(path) if is_url(item) else sha256sum(path)
            if expected is not None and digest != expected:
                raise A2VError(f"{item}: checksum mismatch (sha256 {digest}, expected {expected})")
        part = safe_extract(path, part_dir)
        _merge_tree(part, root)
        if with_manifest:
            fetched.append(FetchedFile(item, path.resolve(), path.stat().st_size, digest))
    return root, fetched


def resolve_source(source: str | list[str], cache_dir: str | Path, sha256: dict[str, str] | None = None,
                   speakers: list[str] | None = None, *, offline: bool = False,
                   log: logging.Logger | None = None) -> Path:
    """Turn a dataset source into a local folder in the corpus's own layout.

    Args:
        source: a folder, an archive path, a URL, or a list of archives/URLs/folders (e.g.
            GRID's per-speaker archives) that unpack into one folder; ``{speaker}`` in an item
            is expanded over ``speakers``.
        cache_dir: where downloads and extractions go (``resources/<dataset>`` by default).
        sha256: optional ``{file name or URL: hex digest}`` to verify files against.
        speakers: the speakers a ``{speaker}`` template expands over.
        offline: never touch the network: a URL must have been fetched already (by
            :func:`fetch`); local archives are still unpacked.
        log: where progress is reported (default: the ``a2v.source`` logger).

    Returns:
        the folder holding the corpus files.

    Raises:
        ConfigError: a ``{speaker}`` template without speakers.
        A2VError: the source does not exist, a download fails (or, offline, is missing), a
            checksum differs, or an archive is unsafe (:class:`ArchiveError`).
    """
    root, _ = _resolve(source, Path(cache_dir), sha256, speakers, offline=offline, with_manifest=False,
                       log=log or _log, download_options={})
    return root


def dataset_speakers(dataset_cfg: dict) -> list[str]:
    """``speakers`` then the ``unseen_speakers`` not already listed: what a dataset's sources and
    index cover. The preprocessing units (shards) are :func:`speaker_shards`."""
    speakers = list(dataset_cfg.get("speakers", []))
    return speakers + [s for s in dataset_cfg.get("unseen_speakers", []) if s not in speakers]


SHARD_KINDS = ("all", "speakers", "unseen")


def _groups(speakers: list[str], k: int) -> dict[str, list[str]]:
    if k == 1:
        return {s: [s] for s in speakers}
    ordered = sorted(speakers)
    cut = [ordered[i:i + k] for i in range(0, len(ordered), k)]
    return {(g[0] if len(g) == 1 else f"{g[0]}__{g[-1]}"): g for g in cut}


def speaker_shards(dataset_cfg: dict, kind: str = "all") -> dict[str, list[str]]:
    """The dataset's preprocessing units: ``{shard name: its speakers}``.

    Every shard is one extract, align and features job (``interim/<dataset>/<shard>/``,
    ``features/<dataset>/<shard>.h5`` and ``.tsv``, ``logs/<stage>/<dataset>_<shard>.log``), and
    every clip in it keeps its own speaker id (:mod:`a2v.features.shard`). The one place the
    workflow (``workflow/rules/common.smk``) and the command line (``a2v preprocess-summary``, the
    extract stage resolving ``--speaker``) take the shards from.

    ``datasets.<name>.speakers_per_shard`` (k; absent means 1):

    * k = 1: one shard per speaker, named by the speaker id, in the config's order: the layout
      before grouping existed, unchanged.
    * k > 1: the sorted ``speakers`` are cut into consecutive groups of k (the last may hold
      fewer), then the sorted ``unseen_speakers`` the same way. A group of several speakers is
      named ``<first>__<last>`` (e.g. ``id00012__id00417``), a group of one by its speaker id.

    Args:
        dataset_cfg: ``datasets.<name>`` of the config.
        kind: ``"speakers"`` (the training speakers' shards), ``"unseen"`` (the
            ``unseen_speakers``'), or ``"all"`` (both, training speakers' first).

    Raises:
        ConfigError: k < 1, a speaker both in ``speakers`` and in ``unseen_speakers``, or the
            name of a group of several speakers that is also a speaker id.
    """
    if kind not in SHARD_KINDS:
        raise ValueError(f"kind must be one of {SHARD_KINDS}, got {kind!r}")
    k = int(dataset_cfg.get("speakers_per_shard", 1))
    if k < 1:
        raise ConfigError(f"speakers_per_shard must be >= 1, got {k}")
    speakers = list(dict.fromkeys(dataset_cfg.get("speakers", [])))
    unseen = list(dict.fromkeys(dataset_cfg.get("unseen_speakers") or []))
    both = sorted(set(speakers) & set(unseen))
    if both:
        raise ConfigError(f"speakers {both} are listed both in speakers and in unseen_speakers")
    # a2v: unseen speakers are grouped apart: select takes every clip of an unseen shard for the
    # split test_unseen (--unseen-shards), so a shard must not mix them with training speakers.
    train, test = _groups(speakers, k), _groups(unseen, k)
    clash = sorted(n for n, g in {**train, **test}.items() if len(g) > 1 and n in {*speakers, *unseen})
    if clash:
        raise ConfigError(f"shard names {clash} are also speaker ids; rename those speakers")
    return {"all": {**train, **test}, "speakers": train, "unseen": test}[kind]


def shard_speakers(dataset_cfg: dict, shard: str) -> list[str]:
    """The speakers of ``shard`` (a name of :func:`speaker_shards`); a name that is not one of the
    dataset's shards is taken as a single speaker id (a stage run by hand on one speaker)."""
    return speaker_shards(dataset_cfg).get(shard, [shard])


def fetch(dataset_cfg: dict, cache_dir: str | Path, speakers: list[str] | None = None, *,
          manifest: str | Path | None = None, log: logging.Logger | None = None, timeout_s: float = 60.0,
          attempts: int = 5, backoff_s: float = 1.0) -> Path:
    """Download, verify, unpack and merge a dataset's sources; write its manifest.

    Idempotent: when every file is already downloaded (and verified) and unpacked, a second
    call does no network I/O and only rewrites the manifest.

    Args:
        dataset_cfg: ``datasets.<name>`` of the config (``source``, optional ``sha256``,
            ``speakers``, ``unseen_speakers``).
        cache_dir: ``resources/<name>``: ``downloads/``, ``parts/``, ``extracted/`` go there.
        speakers: what ``{speaker}`` expands over (default: speakers + unseen_speakers).
        manifest: the TSV to write (default ``<cache_dir>/manifest.tsv``), columns ``source``
            (URL or path), ``local`` (path), ``bytes``, ``sha256`` (empty for a folder);
            written under a temporary name, then renamed.
        log: where progress is reported.
        timeout_s, attempts, backoff_s: passed to :func:`download`.

    Returns:
        the corpus folder (``<cache_dir>/extracted``, or the configured folder itself).

    Raises:
        ConfigError: a ``{speaker}`` template without speakers.
        A2VError: unreachable or missing source, checksum mismatch, unsafe or corrupt archive
            (:class:`ArchiveError`, naming the entry).
    """
    cache_dir = Path(cache_dir)
    if speakers is None:
        speakers = dataset_speakers(dataset_cfg)
    root, files = _resolve(dataset_cfg["source"], cache_dir, dataset_cfg.get("sha256"), speakers, offline=False,
                           with_manifest=True, log=log or _log,
                           download_options={"timeout_s": timeout_s, "attempts": attempts, "backoff_s": backoff_s})
    write_manifest(files, manifest if manifest is not None else cache_dir / "manifest.tsv")
    return root


def write_manifest(files: list[FetchedFile], path: str | Path) -> Path:
    """Write the manifest TSV (see :func:`fetch`) under a temporary name, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(MANIFEST_COLUMNS)
        for f in files:
            writer.writerow([f.source, str(f.local), f.bytes, f.sha256])
    os.replace(tmp, path)
    return path


def read_manifest(path: str | Path) -> list[FetchedFile]:
    """The rows of a manifest written by :func:`write_manifest`."""
    with open(path, newline="", encoding="utf-8") as fh:
        return [FetchedFile(r["source"], Path(r["local"]), int(r["bytes"]), r["sha256"])
                for r in csv.DictReader(fh, delimiter="\t")]


def _merge_tree(src: Path, dst: Path) -> None:
    """Hard-link (or copy) the files of an extracted archive into the merged corpus folder."""
    for path in src.rglob("*"):
        if path.is_file() and path.name != _DONE:
            target = dst / path.relative_to(src)
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, target)
            except OSError:
                shutil.copy2(path, target)
