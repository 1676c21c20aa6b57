"""GRID as its Zenodo record serves it (doi:10.5281/zenodo.3625687): ``sN.zip`` per speaker
(unpacking to ``sN/<code>.mpg``) and ``alignments.zip`` (``alignments/sN/<code>.align``), with
alignment folders mislabelled as lhotse pull requests #1501/#1502 report.

A local HTTP server on 127.0.0.1 (never the real network) serves the embedded real GRID clips
packed that way, with the alignment folders of s2 and s31 swapped, one s1 ``.align`` holding
another clip's words and one malformed. The download and ingest stages run through the ``a2v``
command line against a config pointing at the server; the test checks that the swap is found and
fixed (one log line per remapped folder), that every clip has the words of its own code, and that
the bad ``.align`` files are not used and are counted in ``preprocess_summary.tsv``.
"""

from __future__ import annotations

import functools
import io
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest
import yaml

from a2v.datasets.grid import FolderMatch, GridAdapter, align_words, match_alignment_folders, words_from_code
from a2v.datasets.record import read_index

RECORD = "/records/3625687/files"
S1_CLIPS = ("bgbn8n", "bgwo5a", "lgbgzp", "pbai5s", "sbit3s")
MISMATCHED = "bgbn8n"  # its .align gets the words of lgbgzp ("lay green by g zero please")
MALFORMED = "pbai5s"  # its .align loses a column on one line
SWAP = {"s2": "s31", "s31": "s2"}  # alignments.zip's folder s2 holds s31's files and vice versa


def _zip(members: dict[str, bytes]) -> bytes:
    """A zip with a directory entry per folder, as common zip tools write them."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        dirs = sorted({name.rsplit("/", 1)[0] + "/" for name in members} | {name.split("/", 1)[0] + "/" for name in members})
        for d in dirs:
            zf.writestr(d, b"")
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _record_files(grid_sample: Path) -> dict[str, bytes]:
    """The record's archives built from the embedded clips, with the faults described above."""
    files = {
        "s1.zip": _zip({f"s1/{c}.mpg": (grid_sample / "s1" / f"{c}.mpg").read_bytes() for c in S1_CLIPS}),
        "s2.zip": _zip({f"s2/{p.name}": p.read_bytes() for p in sorted((grid_sample / "s2").glob("*.mpg"))}),
        "s31.zip": _zip({f"s31/{p.name}": p.read_bytes() for p in sorted((grid_sample / "s31").glob("*.mpg"))}),
    }
    aligns: dict[str, bytes] = {}
    for clip in S1_CLIPS:
        data = (grid_sample / "alignments" / "s1" / f"{clip}.align").read_bytes()
        if clip == MISMATCHED:
            data = (grid_sample / "alignments" / "s1" / "lgbgzp.align").read_bytes()
        elif clip == MALFORMED:
            lines = data.split(b"\r\n")
            lines[2] = lines[2].rsplit(b" ", 1)[0]  # "start end" without its word
            data = b"\r\n".join(lines)
        aligns[f"alignments/s1/{clip}.align"] = data
    for speaker, folder in SWAP.items():
        for p in sorted((grid_sample / "alignments" / speaker).glob("*.align")):
            aligns[f"alignments/{folder}/{p.name}"] = p.read_bytes()
    files["alignments.zip"] = _zip(aligns)
    files["audio_25k.zip"] = _zip({"audio_25k/README": b"not to be fetched"})
    return files


@pytest.fixture
def record(tmp_path, grid_sample, monkeypatch):
    """``(base URL, requested paths)`` of a local server holding the record's files."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    served = tmp_path / "served"
    folder = served / RECORD.strip("/")
    folder.mkdir(parents=True)
    for name, data in _record_files(grid_sample).items():
        (folder / name).write_bytes(data)
    requests: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest's output clean
            pass

        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(served)))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", requests
    httpd.shutdown()
    httpd.server_close()


def _download_and_ingest(repo: Path, tmp_path: Path, base: str) -> tuple[Path, str]:
    """Run ``a2v download`` and ``a2v ingest`` on the real config pointed at the server; return
    the index and the ingest log."""
    from a2v.cli import main

    override = tmp_path / "override.yaml"
    override.write_text(yaml.safe_dump({
        "results_dir": str(tmp_path / "results"), "resources_dir": str(tmp_path / "resources"),
        "datasets": {"grid": {"source": [f"{base}{RECORD}/{{speaker}}.zip", f"{base}{RECORD}/alignments.zip"],
                              "speakers": ["s1"], "unseen_speakers": ["s2", "s31"]}},
    }))
    common = ["-c", str(repo / "config" / "config.yaml"), "-c", str(override), "--dataset", "grid"]
    manifest = tmp_path / "resources" / "grid" / "manifest.tsv"
    assert main(["download", *common, "--out", str(manifest), "--log", str(tmp_path / "download.log")]) == 0
    index = tmp_path / "results" / "grid" / "index.tsv"
    log = tmp_path / "ingest.log"
    assert main(["ingest", *common, "--out", str(index), "--log", str(log)]) == 0
    return index, log.read_text()


def test_record_layout_downloads_and_swapped_alignment_folders_are_remapped(record, repo, tmp_path, grid_sample):
    base, requests = record
    index, log = _download_and_ingest(repo, tmp_path, base)
    # the record's files, one request each; audio_25k.zip is not fetched (audio comes from the videos)
    assert sorted(requests) == sorted(f"{RECORD}/{n}" for n in ("s1.zip", "s2.zip", "s31.zip", "alignments.zip"))

    # one log line per remapped folder, naming the folder and the speaker it now serves
    remaps = [line for line in log.splitlines() if "remapped to" in line]
    assert len(remaps) == 2, log
    for speaker, folder in SWAP.items():
        assert sum(f"alignments/{folder}: holds the word alignments of speaker {speaker} " in line
                   and line.endswith(f"remapped to {speaker}") for line in remaps) == 1, remaps

    records = {(r.speaker, r.clip_id): r for r in read_index(index)}
    assert sorted(records) == sorted([("s1", c) for c in S1_CLIPS] + [("s2", "swwp2s"), ("s31", "bgiq6p")])
    for (speaker, clip), r in records.items():
        assert r.words == words_from_code(clip), (speaker, clip)  # each clip has the words of its own code
        assert r.audio == "" and Path(r.video).read_bytes() == (grid_sample / speaker / f"{clip}.mpg").read_bytes()
        if clip in (MISMATCHED, MALFORMED):
            continue
        # the alignment used is the clip's own real one, from the folder that holds it
        assert r.meta == {"word_alignment": "ok"}
        assert Path(r.transcript).parent.name == SWAP.get(speaker, speaker)
        assert Path(r.transcript).read_bytes() == (grid_sample / "alignments" / speaker / f"{clip}.align").read_bytes()
        assert align_words(r.transcript) == words_from_code(clip)

    # the bad .align files are not used (no timings; words from the code) and each is named in the log
    bad = records[("s1", MISMATCHED)]
    assert bad.transcript == "" and bad.meta == {"word_alignment": "mismatch"}
    assert any(f"alignments/s1/{MISMATCHED}.align reads 'lay green by g zero please' but the clip code spells "
               "'bin green by n eight now': alignment not used" in line for line in log.splitlines()), log
    broken = records[("s1", MALFORMED)]
    assert broken.transcript == "" and broken.meta == {"word_alignment": "unreadable"}
    assert any(f"alignments/s1/{MALFORMED}.align: line 3:" in line for line in log.splitlines()), log
    assert "speaker s1: 5 clips, 3 with alignments, 2 alignment(s) not used" in log


def test_preprocess_summary_counts_clips_whose_alignment_was_not_used(record, repo, tmp_path):
    from a2v.stages import summary
    from a2v.stages.common import Outcomes

    base, _ = record
    index, _ = _download_and_ingest(repo, tmp_path, base)
    speakers = ["s1", "s2", "s31"]
    tables = summary.layout_tables(tmp_path / "results", "grid", speakers)
    # the stages' per-clip outcome tables: every clip extracted; align skips s1's mismatched clip
    # and one good one (as if no face), so the count follows the clips that reach each stage
    by_speaker = {s: [r.clip_id for r in read_index(index) if r.speaker == s] for s in speakers}
    for speaker, clips in by_speaker.items():
        extract, align, features = Outcomes(), Outcomes(), Outcomes()
        for clip in clips:
            extract.ok(clip, n_frames=75)
            if clip in (MISMATCHED, "bgwo5a"):
                align.skipped(clip, f"{clip}.mpg: no face", kind="NoFaceError")
                continue
            align.ok(clip, frames_kept=75)
            features.ok(clip, n_frames=75)
        for stage, table in (("extract", extract), ("align", align), ("features", features)):
            table.write(tables[speaker][stage])
    out = summary.run(tables, tmp_path / "results" / "grid" / "preprocess_summary.tsv")
    table = pd.read_csv(out, sep="\t").set_index(["stage", "speaker"])
    column = table["clips_word_alignment_rejected"]
    assert (column[("extract", "s1")], column[("align", "s1")], column[("features", "s1")]) == (2, 2, 1)
    assert column[("extract", "s2")] == column[("extract", "s31")] == 0
    assert column[("extract", "all")] == 2 and column[("features", "all")] == 1
    assert table.loc[("align", "s1"), "skipped_NoFaceError"] == 2


# --- the matching rule on its own -------------------------------------------------------------


def _codes(n: int, offset: int) -> set[str]:
    """``n`` distinct GRID codes, the ``offset``-th block of the code space."""
    letters = "abcdefghijklmnopqrstuvxyz"
    out = []
    for i in range(offset * n, offset * n + n):
        out.append("b" + "bgrw"[i % 4] + "abiw"[i // 4 % 4] + letters[i // 16 % 25] + str(i // 400 % 10) + "n")
    return set(out)


def test_matching_rule_rotation_missing_folder_and_chance_overlap():
    clips = {f"s{k}": _codes(40, k) for k in (10, 11, 12, 13, 20)}
    owner = {"s10": "s13", "s11": "s10", "s12": "s11", "s13": "s12"}  # folder -> the speaker whose files it holds
    folders = {name: {c: Path(f"alignments/{name}/{c}.align") for c in clips[spk]} for name, spk in owner.items()}
    # s20's folder holds s21's files (no video), which share 3 codes with s20's clips by chance
    folders["s20"] = {c: Path(f"alignments/s20/{c}.align") for c in sorted(clips["s20"])[:3] + sorted(_codes(37, 99))}
    matches = match_alignment_folders(clips, folders, lambda path, code: True)
    for folder, speaker in owner.items():
        assert matches[speaker] == FolderMatch(speaker, folder, 40, 40, 0)
        assert matches[speaker].remapped
    assert matches["s20"] == FolderMatch("s20", "", 0, 40, 3) and not matches["s20"].remapped

    # files whose words disagree with their codes do not count: below half, the folder is not used
    bad = set(sorted(clips["s10"])[:25])
    matches = match_alignment_folders(clips, folders, lambda path, code: code not in bad)
    assert matches["s10"].folder == "" and matches["s11"].folder == "s12"
    with pytest.raises(ValueError, match="min_coverage"):
        match_alignment_folders(clips, folders, lambda path, code: True, min_coverage=0.0)


def test_adapter_reads_nested_align_folder_and_plain_layout(tmp_path, grid_sample):
    """``alignments/sN/align/*.align`` (the original per-speaker alignment tars) reads like
    ``alignments/sN/*.align``; the embedded sample needs no remap."""
    (tmp_path / "s2").mkdir()
    (tmp_path / "alignments" / "s2" / "align").mkdir(parents=True)
    (tmp_path / "s2" / "swwp2s.mpg").write_bytes((grid_sample / "s2" / "swwp2s.mpg").read_bytes())
    (tmp_path / "alignments" / "s2" / "align" / "swwp2s.align").write_bytes(
        (grid_sample / "alignments" / "s2" / "swwp2s.align").read_bytes())
    adapter = GridAdapter(tmp_path)
    [rec] = adapter.clips(["s2"])
    assert rec.transcript.endswith("alignments/s2/align/swwp2s.align") and rec.words == words_from_code("swwp2s")
    assert adapter.notes == []
    sample = GridAdapter(grid_sample)
    assert all(r.meta == {"word_alignment": "ok"} for r in sample.clips()) and sample.notes == []
