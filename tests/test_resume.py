"""A feature-extraction job killed with SIGKILL loses nothing: the rerun finishes, and every shard
equals, byte for byte, the shard of a clean run.

Three speakers of the embedded GRID sample (s2 and s31: one clip each; s1: four clips) go through
ingest, extract and align once. Then the features stage runs through the command line, as the
Snakemake rule runs it, twice over:

* a clean run: s2, s31, s1 one after the other;
* a killed run: s2 and s31 complete, then s1 is killed with ``kill -9`` while it writes, and the
  s1 job is run again (Snakemake reruns only the job whose output is missing).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from a2v.stages import align, extract, ingest
from conftest import REPO, make_corpus

SPEAKERS = ["s2", "s31", "s1"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, grid_sample):
    corpus = make_corpus(tmp_path_factory.mktemp("corpus"), {
        "s1": ["bgbn8n", "lgbgzp", "pbai5s", "lgbm3s"], "s2": ["swwp2s"], "s31": ["bgiq6p"],
    })
    out = tmp_path_factory.mktemp("results")
    override = out / "override.yaml"
    override.write_text(yaml.safe_dump({
        "results_dir": str(out), "resources_dir": str(out / "resources"),
        "datasets": {"grid": {"source": str(corpus), "speakers": SPEAKERS, "unseen_speakers": []}},
        # no Whisper frames (their path is tests/test_content_encoder.py's): the kill and rerun are the point here
        "preprocess": {"crop_size": 64, "min_frames": 25, "content_encoder": None, "content_mel": False},
    }))
    from a2v.config import load_config

    cfg_files = [REPO / "config" / "config.yaml", override]
    config = load_config(cfg_files)
    index = ingest.run(config, "grid", out / "index.tsv")
    inputs = {}
    for spk in SPEAKERS:
        ext = extract.run(config, index, spk, out / spk / "extract.h5", out / spk / "extract.tsv")
        ali = align.run(config, ext, spk, out / spk / "aligned.h5", out / spk / "align.tsv")
        inputs[spk] = (ext, ali)
    return {"cfg_files": cfg_files, "index": index, "inputs": inputs, "out": out}


def features_cmd(prepared, speaker, shard_dir):
    ext, ali = prepared["inputs"][speaker]
    cmd = [sys.executable, "-m", "a2v", "features"]
    for f in prepared["cfg_files"]:
        cmd += ["-c", str(f)]
    return cmd + [
        "--dataset", "grid", "--speaker", speaker, "--index", str(prepared["index"]),
        "--extracted", str(ext), "--aligned", str(ali),
        "--out", str(shard_dir / f"{speaker}.h5"), "--summary", str(shard_dir / f"{speaker}.tsv"),
    ]


def test_kill_during_features_then_rerun(prepared, tmp_path):
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    for spk in SPEAKERS:
        subprocess.run(features_cmd(prepared, spk, clean), check=True, capture_output=True, cwd=REPO)

    for spk in SPEAKERS[:2]:
        subprocess.run(features_cmd(prepared, spk, killed), check=True, capture_output=True, cwd=REPO)
    before = {spk: (killed / f"{spk}.h5").read_bytes() for spk in SPEAKERS[:2]}

    proc = subprocess.Popen(features_cmd(prepared, "s1", killed), cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while not list(killed.glob(".s1.*.h5.tmp")):  # the shard's temporary file: it is writing
        assert proc.poll() is None, "the features job ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "s1.h5").exists(), "a killed job must not leave a shard under its final name"
    assert list(killed.glob(".s1.*.h5.tmp")), "the kill should have caught the job mid-write"

    subprocess.run(features_cmd(prepared, "s1", killed), check=True, capture_output=True, cwd=REPO)

    for spk in SPEAKERS[:2]:
        assert (killed / f"{spk}.h5").read_bytes() == before[spk], f"{spk}: an unaffected shard changed"
    for spk in SPEAKERS:
        assert (killed / f"{spk}.h5").read_bytes() == (clean / f"{spk}.h5").read_bytes(), f"{spk}.h5 differs from the clean run"
    assert not list(killed.glob(".*.tmp")), "the rerun must clear the killed job's temporary file"
