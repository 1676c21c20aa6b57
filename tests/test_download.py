"""Corpus downloads: resumable, retried, sha256-verified, safely unpacked, then indexed offline.

Everything runs against a local HTTP server on 127.0.0.1 (never the real network) that honours
``Range`` requests and can be scripted to fail (drop the connection mid-body, answer 503, 404,
ignore ``Range``). It serves real archives made from the embedded GRID clips: per-speaker tars
``sN/<clip>.mpg`` and a zip of ``alignments/sN/*.align``, the layout of the Zenodo record.
"""

from __future__ import annotations

import hashlib
import io
import re
import socket
import struct
import tarfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from a2v.datasets.grid import SILENCE_TOKENS, parse_align
from a2v.datasets.record import read_index
from a2v.datasets.source import download, expand_sources, fetch, read_manifest
from a2v.errors import A2VError, ArchiveError, ConfigError

S1_CLIPS = ("bgbn8n", "lgbgzp")
FAST = {"backoff_s": 0.001, "timeout_s": 5.0}  # tiny retry delays for the tests


# --- a local HTTP server with Range support and scripted failures -----------------------------


class _State:
    def __init__(self):
        self.files: dict[str, bytes] = {}
        # path -> actions for the next requests: "drop" (close mid-body), "reset" (RST mid-body),
        # "stall" (hang mid-body), "ignore-range" (answer 200 to a Range request), or a status
        self.script: dict[str, list] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: closing it ends the body

    def log_message(self, *args):  # keep pytest's output clean
        pass

    def _send(self, code: int, body: bytes = b"", headers: dict | None = None, length: int | None = None):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        state: _State = self.server.state
        rng = self.headers.get("Range")
        with state.lock:
            state.requests.append((self.path, rng))
            actions = state.script.get(self.path) or []
            action = actions.pop(0) if actions else None
        data = state.files.get(self.path)
        if isinstance(action, int):
            return self._send(action, b"scripted failure")
        if data is None:
            return self._send(404, b"not found")
        if action in ("drop", "reset", "stall"):  # announce the whole file, send half, then fail
            self._send(200, data[: len(data) // 2], length=len(data))
            self.wfile.flush()
            if action == "reset":  # abortive close: the client gets a TCP RST
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif action == "stall":  # hang past the client's time-out
                time.sleep(1.0)
            return
        m = re.fullmatch(r"bytes=(\d+)-", rng or "")
        if action == "ignore-range" or not m:
            return self._send(200, data)
        start = int(m.group(1))
        if start >= len(data):
            return self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
        return self._send(206, data[start:], {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"})


@pytest.fixture
def server(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.state = _State()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    httpd.state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd.state
    httpd.shutdown()
    httpd.server_close()


# --- real archives from the embedded GRID clips -----------------------------------------------


def _tar(members: dict[str, Path]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, path in members.items():
            tf.add(path, arcname=name)
    return buf.getvalue()


@pytest.fixture(scope="module")
def archives(grid_sample) -> dict[str, bytes]:
    """``s1.tar`` (2 clips), ``s2.tar`` (1 clip), ``alignments.zip`` (every s1 and s2 alignment)."""
    out = {
        "s1.tar": _tar({f"s1/{c}.mpg": grid_sample / "s1" / f"{c}.mpg" for c in S1_CLIPS}),
        "s2.tar": _tar({f"s2/{p.name}": p for p in sorted((grid_sample / "s2").glob("*.mpg"))}),
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for spk in ("s1", "s2"):
            for p in sorted((grid_sample / "alignments" / spk).glob("*.align")):
                zf.write(p, f"alignments/{spk}/{p.name}")
    out["alignments.zip"] = buf.getvalue()
    return out


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _serve_grid(server, archives) -> list[str]:
    for name, data in archives.items():
        server.files[f"/grid/{name}"] = data
    return [f"{server.base}/grid/{{speaker}}.tar", f"{server.base}/grid/alignments.zip"]


def _config(tmp_path: Path, source, speakers=("s1",), **ds) -> dict:
    return {"resources_dir": str(tmp_path / "resources"),
            "datasets": {"grid": {"adapter": "grid", "source": source, "speakers": list(speakers), "unseen_speakers": [], **ds}}}


# --- full fetch, then ingest offline ----------------------------------------------------------


def test_download_stage_verifies_extracts_and_ingest_indexes_words(server, archives, tmp_path, grid_sample):
    from a2v.stages import download as download_stage
    from a2v.stages import ingest

    source = _serve_grid(server, archives)
    sha = {"s1.tar": _sha(archives["s1.tar"]), "alignments.zip": _sha(archives["alignments.zip"])}
    config = _config(tmp_path, source, sha256=sha)
    manifest = tmp_path / "resources" / "grid" / "manifest.tsv"
    download_stage.run(config, "grid", manifest)
    assert server.requests == [("/grid/s1.tar", None), ("/grid/alignments.zip", None)]

    rows = read_manifest(manifest)
    assert [r.source for r in rows] == [f"{server.base}/grid/s1.tar", f"{server.base}/grid/alignments.zip"]
    for row, name in zip(rows, ("s1.tar", "alignments.zip")):
        assert row.local.read_bytes() == archives[name]
        assert row.bytes == len(archives[name]) and row.sha256 == sha[name]
    downloads = tmp_path / "resources" / "grid" / "downloads"
    assert not list(downloads.glob("*.part"))

    index = ingest.run(config, "grid", tmp_path / "index.tsv")
    assert len(server.requests) == 2  # ingest did no network I/O
    records = read_index(index)
    assert sorted(r.clip_id for r in records) == sorted(S1_CLIPS)
    for r in records:
        assert Path(r.video).read_bytes() == (grid_sample / "s1" / f"{r.clip_id}.mpg").read_bytes()
        spoken = tuple(w for _, _, w in parse_align(grid_sample / "alignments" / "s1" / f"{r.clip_id}.align")
                       if w not in SILENCE_TOKENS)
        assert r.transcript and r.words == spoken


def test_second_fetch_does_no_network_io(server, archives, tmp_path):
    source = _serve_grid(server, archives)
    ds = {"source": source, "speakers": ["s1"], "sha256": {"alignments.zip": _sha(archives["alignments.zip"])}}
    cache = tmp_path / "cache"
    root = fetch(ds, cache, **FAST)
    first = (cache / "manifest.tsv").read_text()
    server.requests.clear()
    assert fetch(ds, cache, **FAST) == root
    assert server.requests == []
    assert (cache / "manifest.tsv").read_text() == first


def test_ingest_without_download_names_the_missing_url(server, archives, tmp_path):
    from a2v.stages import ingest

    config = _config(tmp_path, _serve_grid(server, archives))
    with pytest.raises(A2VError, match=r"/grid/s1\.tar: not downloaded yet"):
        ingest.run(config, "grid", tmp_path / "index.tsv")
    assert server.requests == []


# --- resume, retry, restart ---------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 100_000])
def test_resume_sends_range_and_appends(server, archives, tmp_path, seed):
    data = archives["s1.tar"]
    server.files["/f.tar"] = data
    dest = tmp_path / "f.tar"
    (tmp_path / "f.tar.part").write_bytes(data[:seed])
    download(f"{server.base}/f.tar", dest, _sha(data), **FAST)
    assert server.requests == [("/f.tar", f"bytes={seed}-")]
    assert dest.read_bytes() == data and not (tmp_path / "f.tar.part").exists()


def test_server_ignoring_range_restarts_from_zero(server, archives, tmp_path):
    data = archives["s1.tar"]
    server.files["/f.tar"] = data
    server.script["/f.tar"] = ["ignore-range"]
    (tmp_path / "f.tar.part").write_bytes(b"x" * 5000)  # not even the right bytes
    download(f"{server.base}/f.tar", tmp_path / "f.tar", _sha(data), **FAST)
    assert server.requests == [("/f.tar", "bytes=5000-")]
    assert (tmp_path / "f.tar").read_bytes() == data


@pytest.mark.parametrize("extra", [0, 10], ids=["part-complete", "part-too-long"])
def test_416_complete_part_kept_or_oversized_part_restarted(server, archives, tmp_path, extra):
    data = archives["alignments.zip"]
    server.files["/a.zip"] = data
    (tmp_path / "a.zip.part").write_bytes(data + b"\0" * extra)
    download(f"{server.base}/a.zip", tmp_path / "a.zip", _sha(data), **FAST)
    expected = [("/a.zip", f"bytes={len(data) + extra}-")] + ([("/a.zip", None)] if extra else [])
    assert server.requests == expected
    assert (tmp_path / "a.zip").read_bytes() == data


@pytest.mark.parametrize("failure", ["drop", "reset", "stall"])
def test_connection_lost_mid_body_is_retried_and_resumed(server, archives, tmp_path, failure):
    data = archives["s1.tar"]
    server.files["/f.tar"] = data
    server.script["/f.tar"] = [failure]
    download(f"{server.base}/f.tar", tmp_path / "f.tar", _sha(data), **{**FAST, "timeout_s": 0.3})
    (first, _), (second, rng) = server.requests
    assert first == second == "/f.tar"
    if failure == "reset":  # an RST may discard bytes not yet read: resumes from what reached the disk
        assert rng is None or 0 < int(rng.removeprefix("bytes=").removesuffix("-")) <= len(data) // 2
    else:
        assert rng == f"bytes={len(data) // 2}-"
    assert (tmp_path / "f.tar").read_bytes() == data


def test_503_is_retried(server, archives, tmp_path):
    data = archives["alignments.zip"]
    server.files["/a.zip"] = data
    server.script["/a.zip"] = [503, 429]
    download(f"{server.base}/a.zip", tmp_path / "a.zip", None, **FAST)
    assert [p for p, _ in server.requests] == ["/a.zip"] * 3
    assert (tmp_path / "a.zip").read_bytes() == data


def test_retries_exhausted_keep_the_part(server, archives, tmp_path):
    data = archives["s1.tar"]
    server.files["/f.tar"] = data
    server.script["/f.tar"] = ["drop", 500, 500]
    with pytest.raises(A2VError, match=r"/f\.tar: download failed after 3 attempts \(HTTP 500"):
        download(f"{server.base}/f.tar", tmp_path / "f.tar", attempts=3, **FAST)
    assert (tmp_path / "f.tar.part").stat().st_size == len(data) // 2 and not (tmp_path / "f.tar").exists()
    download(f"{server.base}/f.tar", tmp_path / "f.tar", **FAST)  # the rerun resumes
    assert server.requests[-1] == ("/f.tar", f"bytes={len(data) // 2}-")
    assert (tmp_path / "f.tar").read_bytes() == data


@pytest.mark.parametrize("status", [404, 403])
def test_client_error_is_not_retried(server, tmp_path, status):
    server.script["/missing.tar"] = [status]
    url = f"{server.base}/missing.tar"
    with pytest.raises(A2VError, match=rf"{re.escape(url)}: HTTP {status}"):
        download(url, tmp_path / "missing.tar", **FAST)
    assert len(server.requests) == 1
    assert not (tmp_path / "missing.tar").exists()


def test_checksum_mismatch_removes_everything(server, archives, tmp_path):
    data = archives["s1.tar"]
    server.files["/f.tar"] = data
    url, wrong = f"{server.base}/f.tar", "0" * 64
    with pytest.raises(A2VError, match=rf"{re.escape(url)}: checksum mismatch \(sha256 {_sha(data)}, expected {wrong}\)"):
        download(url, tmp_path / "f.tar", wrong, **FAST)
    assert list(tmp_path.iterdir()) == []


# --- sources: templates, local archives -------------------------------------------------------


def test_speaker_template_expansion():
    src = ["https://zenodo.org/records/3625687/files/{speaker}.tar", "https://zenodo.org/records/3625687/files/alignments.zip"]
    assert expand_sources(src, ["s1", "s2", "s1"]) == [
        "https://zenodo.org/records/3625687/files/s1.tar", "https://zenodo.org/records/3625687/files/s2.tar",
        "https://zenodo.org/records/3625687/files/alignments.zip"]
    assert expand_sources("/data/grid", None) == ["/data/grid"]
    with pytest.raises(ConfigError, match="no speakers"):
        expand_sources(src, [])
    with pytest.raises(ConfigError, match="speakers"):
        expand_sources("https://x/{speakers}.tar", ["s1"])


def test_fetch_expands_template_over_speakers_and_unseen(server, archives, tmp_path):
    source = _serve_grid(server, archives)
    root = fetch({"source": source, "speakers": ["s1"], "unseen_speakers": ["s2"]}, tmp_path / "cache", **FAST)
    assert [p for p, _ in server.requests] == ["/grid/s1.tar", "/grid/s2.tar", "/grid/alignments.zip"]
    assert sorted(p.name for p in (root / "s1").iterdir()) == sorted(f"{c}.mpg" for c in S1_CLIPS)
    assert [p.name for p in (root / "s2").iterdir()] == ["swwp2s.mpg"]
    assert (root / "alignments" / "s2" / "swwp2s.align").is_file()


def test_local_archives_work_in_place_of_urls(archives, tmp_path):
    from a2v.stages import ingest

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name, data in archives.items():
        (mirror / name).write_bytes(data)
    config = _config(tmp_path, [f"{mirror}/{{speaker}}.tar", str(mirror / "alignments.zip")],
                     sha256={"s1.tar": _sha(archives["s1.tar"])})
    fetch(config["datasets"]["grid"], tmp_path / "resources" / "grid")
    rows = read_manifest(tmp_path / "resources" / "grid" / "manifest.tsv")
    assert [(r.local, r.sha256) for r in rows] == [(mirror / "s1.tar", _sha(archives["s1.tar"])),
                                                   (mirror / "alignments.zip", _sha(archives["alignments.zip"]))]
    records = read_index(ingest.run(config, "grid", tmp_path / "index.tsv"))
    assert sorted(r.clip_id for r in records) == sorted(S1_CLIPS) and all(r.transcript for r in records)


def test_local_archive_checksum_mismatch(archives, tmp_path):
    (tmp_path / "s1.tar").write_bytes(archives["s1.tar"])
    with pytest.raises(A2VError, match="s1.tar: checksum mismatch"):
        fetch({"source": str(tmp_path / "s1.tar"), "speakers": ["s1"], "sha256": {"s1.tar": "1" * 64}}, tmp_path / "cache")


# --- unsafe archives ---------------------------------------------------------------------------


def _evil_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("s1/evil.mpg")
        info.type, info.linkname = tarfile.SYMTYPE, "../../../../outside.txt"
        tf.addfile(info)
        payload = b"written through the link"
        info = tarfile.TarInfo("s1/evil.mpg")
        info.size = len(payload)
        tf.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


def _evil_zip(grid_sample) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.write(grid_sample / "alignments" / "s1" / "bgbn8n.align", "alignments/s1/bgbn8n.align")
        zf.writestr("../evil.txt", b"outside")
    return buf.getvalue()


@pytest.mark.parametrize("name, entry", [("bad.tar", "s1/evil.mpg"), ("bad.zip", "../evil.txt")])
def test_unsafe_archive_rejected_nothing_written_outside(server, tmp_path, grid_sample, name, entry):
    server.files[f"/{name}"] = _evil_tar() if name == "bad.tar" else _evil_zip(grid_sample)
    cache = tmp_path / "deep" / "cache"
    with pytest.raises(ArchiveError, match=rf"{re.escape(name)}: unsafe entry '{re.escape(entry)}'"):
        fetch({"source": [f"{server.base}/{name}"], "speakers": ["s1"]}, cache, **FAST)
    assert not (cache / "parts" / name).exists() and not (cache / "extracted").exists()
    assert not list((cache / "parts").iterdir())  # no temporary extraction left behind
    leaked = [p for p in tmp_path.rglob("*") if "evil" in p.name or "outside" in p.name]
    assert leaked == []
    assert not (cache / "manifest.tsv").exists()


# --- the command line --------------------------------------------------------------------------


def test_cli_download_writes_manifest_and_reports_http_errors(server, archives, tmp_path, repo, capsys):
    import yaml

    from a2v.cli import main

    source = _serve_grid(server, archives)
    override = tmp_path / "o.yaml"
    override.write_text(yaml.safe_dump({"resources_dir": str(tmp_path / "res"),
                                        "datasets": {"grid": {"source": source, "speakers": ["s1"], "unseen_speakers": []}}}))
    manifest = tmp_path / "res" / "grid" / "manifest.tsv"
    argv = ["download", "-c", str(repo / "config" / "config.yaml"), "-c", str(override), "--dataset", "grid", "--out", str(manifest)]
    assert main(argv) == 0
    assert [r.source.rsplit("/", 1)[-1] for r in read_manifest(manifest)] == ["s1.tar", "alignments.zip"]

    override.write_text(yaml.safe_dump({"resources_dir": str(tmp_path / "res2"),
                                        "datasets": {"grid": {"source": f"{server.base}/gone/{{speaker}}.tar", "speakers": ["s1"], "unseen_speakers": []}}}))
    capsys.readouterr()
    assert main(argv[:-1] + [str(tmp_path / "res2" / "grid" / "manifest.tsv")]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("a2v download: error:")]
    assert err == [f"a2v download: error: {server.base}/gone/s1.tar: HTTP 404 Not Found (client error, not retried)"]
