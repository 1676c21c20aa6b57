"""ingest → extract → align → features on real GRID clips, with bad clips mixed in.

The bad clips are made from real ones: a truncated copy, and a copy showing only the
background corner of the frame (no face). Each must be skipped with its cause while the good
clips go on into a shard that follows the schema.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from a2v.config import load_config
from a2v.errors import ShardSchemaError
from a2v.features.shard import DATASETS, SCHEMA_VERSION, ShardReader
from a2v.io.audio import load_audio
from a2v.io.video import read_frames, write_video
from a2v.stages import align, extract, features, ingest

GOOD = ["bgbn8n", "lgbm3s"]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, grid_sample, repo):
    root = tmp_path_factory.mktemp("corpus")
    (root / "s1").mkdir()
    (root / "alignments" / "s1").mkdir(parents=True)
    for clip in GOOD:
        shutil.copy(grid_sample / "s1" / f"{clip}.mpg", root / "s1")
        shutil.copy(grid_sample / "alignments" / "s1" / f"{clip}.align", root / "alignments" / "s1")
    src = grid_sample / "s1" / "pbai5s.mpg"
    (root / "s1" / "pbai5p.mpg").write_bytes(src.read_bytes()[:300_000])  # truncated
    corner = read_frames(src)[:, :96, :96]  # background only
    write_video(root / "s1" / "pbai6p.mp4", corner, 25.0, load_audio(src), 16000)

    out = tmp_path_factory.mktemp("results")
    cfg_file = out / "test.yaml"
    cfg_file.write_text(
        f"datasets: {{grid: {{source: '{root}', speakers: [s1]}}}}\n"
        f"resources_dir: '{out / 'resources'}'\n"
        "preprocess: {crop_size: 64, min_frames: 25}\n"
    )
    config = load_config([repo / "config/config.yaml", cfg_file])
    index = ingest.run(config, "grid", out / "index.tsv")
    ext = extract.run(config, index, "s1", out / "extract.h5", out / "extract.tsv")
    ali = align.run(config, ext, "s1", out / "aligned.h5", out / "align.tsv")
    shard = features.run(config, "grid", "s1", index, ext, ali, out / "s1.h5", out / "features.tsv")
    return {"out": out, "shard": shard}


def test_bad_clips_skipped_with_cause(pipeline):
    out = pipeline["out"]
    ext = pd.read_csv(out / "extract.tsv", sep="\t", keep_default_na=False).set_index("clip_id")
    assert ext.loc["pbai5p", "status"] == "skipped"
    assert "pbai5p.mpg" in ext.loc["pbai5p", "cause"] and "truncated or corrupt" in ext.loc["pbai5p", "cause"]
    ali = pd.read_csv(out / "align.tsv", sep="\t", keep_default_na=False).set_index("clip_id")
    assert ali.loc["pbai6p", "status"] == "skipped" and "no face" in ali.loc["pbai6p", "cause"]
    assert (ali.loc[GOOD, "status"] == "ok").all()


def test_shard_follows_schema(pipeline):
    with ShardReader(pipeline["shard"]) as shard:
        assert shard.clip_ids == GOOD
        assert shard.attrs["schema_version"] == SCHEMA_VERSION and shard.attrs["crop_size"] == 64
        t = shard.n_frames("bgbn8n")
        assert t == 75
        for name, (dtype, _) in DATASETS.items():
            arr = shard.read("bgbn8n", name)
            assert arr.dtype == np.dtype(dtype) and len(arr) == t, name
        assert shard.read("bgbn8n", "frames").shape == (75, 64, 64, 3)
        assert shard.read("bgbn8n", "flow").shape == (75, 2, 64, 64)
        assert shard.read("bgbn8n", "heatmaps").shape == (75, 15, 96, 96)
        attrs = shard.clip_attrs("bgbn8n")
        assert attrs["words"] == ["bin", "green", "by", "n", "eight", "now"]
        assert attrs["phonemes"][:3] == ["B", "IH", "N"]
        # the mouth opens while speaking: flow in the lower half moves more in speech than in the lead-in silence
        flow = shard.read("bgbn8n", "flow").astype(np.float32)
        mouth_motion = np.abs(flow[:, :, 40:, 16:48]).mean(axis=(1, 2, 3))
        assert mouth_motion[25:60].mean() > mouth_motion[1:15].mean()


def test_reader_refuses_other_schema_version(pipeline, tmp_path):
    import h5py

    copy = tmp_path / "old.h5"
    shutil.copy(pipeline["shard"], copy)
    with h5py.File(copy, "a") as h5:
        h5.attrs["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(ShardSchemaError, match="old.h5: shard schema version"):
        ShardReader(copy)


def test_no_temporary_files_left(pipeline):
    assert not [p for p in pipeline["out"].iterdir() if p.name.startswith(".")]
