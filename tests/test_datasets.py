"""GRID adapter, dataset index and safe archive handling, on the embedded real clips."""

from __future__ import annotations

import io
import shutil
import tarfile
import zipfile

import pytest

from a2v.datasets.grid import GridAdapter, parse_align, words_from_code
from a2v.datasets.record import read_index, write_index
from a2v.datasets.source import resolve_source, safe_extract
from a2v.errors import ArchiveError, MediaError


def test_parse_align_crlf_units(grid_sample):
    path = grid_sample / "alignments" / "s1" / "bgbn8n.align"
    assert b"\r\n" in path.read_bytes()
    words = parse_align(path)
    assert words[0][2] == "sil" and words[0][0] == 0.0
    assert [w for _, _, w in words if w not in ("sil", "sp")] == ["bin", "green", "by", "n", "eight", "now"]
    assert words[-1][1] == pytest.approx(74500 / 25000)  # 1/25000 s units


def test_words_from_code_match_alignments(grid_sample):
    for align in sorted((grid_sample / "alignments" / "s1").glob("*.align")):
        spoken = [w for _, _, w in parse_align(align) if w not in ("sil", "sp")]
        assert list(words_from_code(align.stem)) == spoken, align.name
    with pytest.raises(ValueError):
        words_from_code("xyz123")


def test_adapter_indexes_every_speaker(grid_sample, tmp_path):
    adapter = GridAdapter(grid_sample)
    assert adapter.speakers() == ["s1", "s2", "s31"]
    records = adapter.clips()
    assert sum(r.speaker == "s1" for r in records) == 16
    s31 = [r for r in records if r.speaker == "s31"][0]
    assert s31.words == ("bin", "green", "in", "q", "six", "please")
    path = write_index(records, tmp_path / "index.tsv")
    assert read_index(path) == records
    with pytest.raises(MediaError, match="s99"):
        adapter.clips(["s99"])


def _zip_of_sample(grid_sample, path, extra=None):
    with zipfile.ZipFile(path, "w") as zf:
        for f in sorted((grid_sample / "s31").iterdir()):
            zf.write(f, f"s31/{f.name}")
        for f in sorted((grid_sample / "alignments" / "s31").iterdir()):
            zf.write(f, f"alignments/s31/{f.name}")
        if extra:
            zf.writestr(extra, b"evil")
    return path


def test_archive_source_indexes_like_folder(grid_sample, tmp_path):
    archive = _zip_of_sample(grid_sample, tmp_path / "s31.zip")
    root = resolve_source(str(archive), tmp_path / "cache")
    recs = GridAdapter(root).clips(["s31"])
    assert [r.clip_id for r in recs] == ["bgiq6p"] and recs[0].transcript
    assert resolve_source(str(archive), tmp_path / "cache") == root  # rerun reuses the extraction


@pytest.mark.parametrize("entry", ["../escape.txt", "/etc/evil.txt", "s31/../../evil.txt"])
def test_zip_with_unsafe_entry_rejected(grid_sample, tmp_path, entry):
    archive = _zip_of_sample(grid_sample, tmp_path / "bad.zip", extra=entry)
    with pytest.raises(ArchiveError, match="bad.zip: unsafe entry"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "escape.txt").exists()


def test_tar_with_link_rejected(tmp_path):
    path = tmp_path / "bad.tar"
    with tarfile.open(path, "w") as tf:
        info = tarfile.TarInfo("s1/link.mpg")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(ArchiveError, match="link"):
        safe_extract(path, tmp_path / "out")


def test_corrupt_zip_rejected(grid_sample, tmp_path):
    archive = _zip_of_sample(grid_sample, tmp_path / "c.zip")
    data = bytearray(archive.read_bytes())
    data[200:400] = b"\0" * 200  # damage the first member's data
    archive.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="c.zip"):
        safe_extract(archive, tmp_path / "out")
