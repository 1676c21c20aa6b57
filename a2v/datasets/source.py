"""Where a dataset's files come from: a local folder, a local archive, or a URL.

One config key (``datasets.<name>.source``) names any of the three. Archives (zip, tar, tar.gz)
are verified and unpacked safely into a cache folder: entries with absolute paths, ``..``
components, or links are rejected (tar through Python's ``"data"`` extraction filter, zip by
checking every member name) and nothing is written outside the destination. A URL is
downloaded to a temporary name and renamed when complete; a ``sha256`` in the config is
checked.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from a2v.errors import A2VError, ArchiveError

_DONE = ".a2v_extracted"


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://", "ftp://"))


def sha256sum(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, dest: str | Path, sha256: str | None = None, timeout_s: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` (temporary name, then rename); skip if already complete.

    Raises:
        A2VError: network failure or checksum mismatch (the partial file is removed).
    """
    dest = Path(dest)
    if dest.is_file() and (sha256 is None or sha256sum(dest) == sha256):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout_s) as resp:
            shutil.copyfileobj(resp, out)
        if sha256 is not None and (got := sha256sum(tmp)) != sha256:
            raise A2VError(f"{url}: checksum mismatch (sha256 {got}, expected {sha256})")
        os.replace(tmp, dest)
    except OSError as exc:
        raise A2VError(f"{url}: download failed ({exc})") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


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
        ArchiveError: corrupt archive, unsupported format, or an unsafe entry.
    """
    archive, dest = Path(archive), Path(dest)
    if (dest / _DONE).is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                bad = zf.testzip()
                if bad is not None:
                    raise ArchiveError(f"{archive}: corrupt member {bad!r} (CRC mismatch)")
                for info in zf.infolist():
                    _check_member_name(archive, info.filename)
                    if (info.external_attr >> 16) & 0o170000 == 0o120000:
                        raise ArchiveError(f"{archive}: unsafe entry {info.filename!r} (symbolic link)")
                zf.extractall(tmp)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                for member in tf.getmembers():
                    _check_member_name(archive, member.name)
                    if member.issym() or member.islnk():
                        raise ArchiveError(f"{archive}: unsafe entry {member.name!r} (link)")
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


def resolve_source(source: str | list[str], cache_dir: str | Path, sha256: dict[str, str] | None = None) -> Path:
    """Turn a dataset source into a local folder in the corpus's own layout.

    Args:
        source: a folder, an archive path, a URL, or a list of archives/URLs (e.g. GRID's
            per-speaker zips) that unpack into one folder.
        cache_dir: where downloads and extractions go (``resources/<dataset>`` by default).
        sha256: optional ``{file name: hex digest}`` to verify downloads against.

    Returns:
        the folder holding the corpus files.

    Raises:
        A2VError: the source does not exist, a download fails, or an archive is unsafe.
    """
    cache_dir = Path(cache_dir)
    sources = [source] if isinstance(source, str) else list(source)
    if len(sources) == 1 and not is_url(sources[0]) and Path(sources[0]).is_dir():
        return Path(sources[0])
    root = cache_dir / "extracted"
    for item in sources:
        if is_url(item):
            name = item.rstrip("/").rsplit("/", 1)[-1]
            path = download(item, cache_dir / "downloads" / name, (sha256 or {}).get(name))
        else:
            path = Path(item)
            if not path.exists():
                raise A2VError(f"{path}: dataset source not found")
        part = safe_extract(path, cache_dir / "parts" / path.name)
        _merge_tree(part, root)
    return root


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
