"""ingest → extract → align → features on real GRID clips, with bad and odd clips mixed in.

Every bad or odd clip is made from a real GRID clip (``resources/grid_sample``) with ffmpeg or
OpenCV. The bad ones must be skipped by the stage that detects them, with a cause naming the
file and the problem, while the good ones go on into a shard that follows the schema; the odd
but usable ones (48 kHz stereo, 30 fps, variable frame rate, a partly turned head) must go
through with their frames and audio where they belong.

=============  ========================================================  ===========================
clip           made from bgbn8n / pbai5s by                               expected
=============  ========================================================  ===========================
``pbai5p``     the first 300 kB of the file (truncated)                   extract: truncated/corrupt
``pbai6p``     the 96x96 background corner only                           align: no face
``pbai7p``     video copied, audio track dropped                          extract: no audio stream
``pbai8p``     audio muted (volume 0)                                     extract: silent
``pbai9p``     audio resampled to 8 kHz                                   extract: 8000 Hz
``bgbn1n``     audio at 48 kHz stereo PCM                                 ok, audio ≈ the original's
``bgbn2n``     re-encoded at 30 fps                                       ok, 75 frames at 25 fps
``bgbn3n``     every third frame dropped, timestamps kept (VFR)           ok, 75 frames at 25 fps
``bgbn4n``     s1 and s31 side by side                                    align: two faces
``bgbn5n``     every frame turned 70° by a perspective warp (profile)     align: no face
``bgbn6n``     frames 0-34 turned 50° (yaw ≈ 25° > the 20° limit)          ok, frames [35, 75) kept
=============  ========================================================  ===========================
"""

from __future__ import annotations

import shutil
import subprocess

import cv2
import numpy as np
import pandas as pd
import pytest

from a2v.config import load_config
from a2v.errors import ShardSchemaError
from a2v.features.shard import CLIP_LEVEL, DATASETS, SCHEMA_VERSION, ShardReader
from a2v.io.audio import load_audio
from a2v.io.ffmpeg_bin import ffmpeg_exe
from a2v.io.video import read_frames, write_video
from a2v.stages import align, extract, features, ingest

GOOD = ["bgbn8n", "lgbm3s"]
SKIPPED = {  # clip -> (stage, words of the cause)
    "pbai5p": ("extract", "truncated or corrupt"),
    "pbai6p": ("align", "no face"),
    "pbai7p": ("extract", "no audio stream"),
    "pbai8p": ("extract", "audio is silent"),
    "pbai9p": ("extract", "sampled at 8000 Hz"),
    "bgbn4n": ("align", "faces in frame"),
    "bgbn5n": ("align", "no face"),
}
ODD_OK = ["bgbn1n", "bgbn2n", "bgbn3n", "bgbn6n"]


def ffmpeg(*args) -> None:
    subprocess.run([ffmpeg_exe(), "-nostdin", "-v", "error", "-y", *map(str, args)], check=True)


def turn(frames: np.ndarray, degrees: float, centre: tuple[float, float]) -> np.ndarray:
    """Frames with the face plane turned ``degrees`` about the vertical axis through ``centre``
    (a perspective warp with a 250 px focal length)."""
    cx, cy = centre
    th, f = np.deg2rad(degrees), 250.0
    src = np.float32([[cx - 80, cy - 80], [cx + 80, cy - 80], [cx + 80, cy + 80], [cx - 80, cy + 80]])
    dst = []
    for x, y in src:
        scale = f / (f + (x - cx) * np.sin(th))
        dst.append((cx + (x - cx) * np.cos(th) * scale, cy + (y - cy) * scale))
    m = cv2.getPerspectiveTransform(src, np.float32(dst))
    h, w = frames.shape[1:3]
    return np.stack([cv2.warpPerspective(x, m, (w, h), borderMode=cv2.BORDER_REPLICATE) for x in frames])


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, grid_sample, repo):
    root = tmp_path_factory.mktemp("corpus")
    s1 = root / "s1"
    s1.mkdir()
    (root / "alignments" / "s1").mkdir(parents=True)
    for clip in GOOD:
        shutil.copy(grid_sample / "s1" / f"{clip}.mpg", s1)
        shutil.copy(grid_sample / "alignments" / "s1" / f"{clip}.align", root / "alignments" / "s1")
    src = grid_sample / "s1" / "pbai5s.mpg"
    (s1 / "pbai5p.mpg").write_bytes(src.read_bytes()[:300_000])  # truncated
    corner = read_frames(src)[:, :96, :96]  # background only
    write_video(s1 / "pbai6p.mp4", corner, 25.0, load_audio(src), 16000)
    ffmpeg("-i", src, "-map", "0:v", "-c:v", "copy", s1 / "pbai7p.mkv")
    ffmpeg("-i", src, "-c:v", "copy", "-af", "volume=0", "-c:a", "pcm_s16le", s1 / "pbai8p.mkv")
    ffmpeg("-i", src, "-c:v", "copy", "-ar", "8000", "-c:a", "pcm_s16le", s1 / "pbai9p.mkv")

    clip = grid_sample / "s1" / "bgbn8n.mpg"
    ffmpeg("-i", clip, "-c:v", "copy", "-ar", "48000", "-ac", "2", "-c:a", "pcm_s16le", s1 / "bgbn1n.mkv")
    ffmpeg("-i", clip, "-vf", "fps=30", "-c:v", "libx264", "-crf", "16", "-c:a", "aac", s1 / "bgbn2n.mp4")
    ffmpeg("-i", clip, "-vf", "select='not(eq(mod(n\\,3)\\,2))'", "-fps_mode", "vfr", "-c:v", "libx264", "-crf", "16",
           "-c:a", "aac", s1 / "bgbn3n.mp4")
    frames, audio = read_frames(clip), load_audio(clip)
    other = read_frames(grid_sample / "s31" / "bgiq6p.mpg")[: len(frames)]
    write_video(s1 / "bgbn4n.mp4", np.concatenate([frames, other], axis=2), 25.0, audio, 16000)
    from a2v.face.landmarks import DlibBackend

    nose = DlibBackend(detect_every=1)(frames[:1])[0][0, 30]
    write_video(s1 / "bgbn5n.mp4", turn(frames, 70, nose), 25.0, audio, 16000)
    half = np.concatenate([turn(frames[:35], 50, nose), frames[35:]])
    write_video(s1 / "bgbn6n.mp4", half, 25.0, audio, 16000)

    out = tmp_path_factory.mktemp("results")
    cfg_file = out / "test.yaml"
    cfg_file.write_text(
        f"datasets: {{grid: {{source: '{root}', speakers: [s1], unseen_speakers: []}}}}\n"
        f"resources_dir: '{out / 'resources'}'\n"
        "preprocess: {crop_size: 64, min_frames: 25, pose_limits: {yaw: 20.0, pitch: 30.0, roll: 30.0}}\n"
    )
    config = load_config([repo / "config/config.yaml", cfg_file])
    index = ingest.run(config, "grid", out / "index.tsv")
    ext = extract.run(config, index, "s1", out / "extract.h5", out / "extract.tsv")
    ali = align.run(config, ext, "s1", out / "aligned.h5", out / "align.tsv")
    shard = features.run(config, "grid", "s1", index, ext, ali, out / "s1.h5", out / "features.tsv")
    return {"out": out, "shard": shard, "corpus": root}


def _table(path):
    return pd.read_csv(path, sep="\t", keep_default_na=False).set_index("clip_id")


@pytest.mark.parametrize("clip", sorted(SKIPPED))
def test_bad_clip_skipped_with_file_and_cause(pipeline, clip):
    stage, words = SKIPPED[clip]
    row = _table(pipeline["out"] / f"{stage}.tsv").loc[clip]
    assert row["status"] == "skipped"
    assert f"/s1/{clip}." in row["cause"] and words in row["cause"], row["cause"]
    with ShardReader(pipeline["shard"]) as shard:
        assert clip not in shard.clip_ids


def test_odd_but_usable_clips_go_through(pipeline):
    ext = _table(pipeline["out"] / "extract.tsv")
    assert int(ext.loc["bgbn1n", "source_sample_rate"]) == 48000 and int(ext.loc["bgbn1n", "source_channels"]) == 2
    assert float(ext.loc["bgbn2n", "source_fps"]) == pytest.approx(30.0)
    ali = _table(pipeline["out"] / "align.tsv")
    assert (ali.loc[GOOD + ODD_OK, "status"] == "ok").all()
    # The longest in-limit run is kept (CRAN §4.2): the frontal frames 35-74, give or take the
    # frames at the cut whose single-frame yaw estimate lands under the limit.
    kept = int(ali.loc["bgbn6n", "frames_kept"])
    assert 36 <= kept <= 44, kept
    with ShardReader(pipeline["shard"]) as shard:
        assert shard.clip_ids == sorted(GOOD + ODD_OK)
        first = shard.clip_attrs("bgbn6n")["first_frame"]
        assert first == 75 - kept and shard.n_frames("bgbn6n") == kept
        ref_mel = shard.read("bgbn8n", "mel")
        ref_lm = shard.read("bgbn8n", "landmarks")
        for clip in ("bgbn1n", "bgbn2n", "bgbn3n"):
            assert shard.n_frames(clip) == 75, clip
            # the same speech lands on the same frames: the mel features match the original's
            mel = shard.read(clip, "mel")
            r = np.corrcoef(mel[:, :128].ravel(), ref_mel[:, :128].ravel())[0, 1]
            assert r > 0.95, (clip, r)
            # and the mouth moves on the same frames (lip opening, inner lips 62 and 66)
            opening = np.linalg.norm(shard.read(clip, "landmarks")[:, 66] - shard.read(clip, "landmarks")[:, 62], axis=1)
            ref_open = np.linalg.norm(ref_lm[:, 66] - ref_lm[:, 62], axis=1)
            assert np.corrcoef(opening, ref_open)[0, 1] > 0.8, clip
        part = shard.read("bgbn6n", "mel")
        assert np.corrcoef(part.ravel(), ref_mel[first:].ravel())[0, 1] > 0.99


def test_inputs_are_not_modified(pipeline, grid_sample):
    for clip in GOOD:
        assert (pipeline["corpus"] / "s1" / f"{clip}.mpg").read_bytes() == (grid_sample / "s1" / f"{clip}.mpg").read_bytes()


def test_shard_follows_schema(pipeline):
    with ShardReader(pipeline["shard"]) as shard:
        assert set(GOOD) <= set(shard.clip_ids)
        assert shard.attrs["schema_version"] == SCHEMA_VERSION and shard.attrs["crop_size"] == 64
        t = shard.n_frames("bgbn8n")
        assert t == 75
        for name, (dtype, _) in DATASETS.items():
            arr = shard.read("bgbn8n", name)
            assert arr.dtype == np.dtype(dtype) and (name in CLIP_LEVEL or len(arr) == t), name
        assert shard.read("bgbn8n", "content_mel").shape == (4 * t, 80)  # 100 rows/s at 25 fps
        assert shard.read("bgbn8n", "frames").shape == (75, 64, 64, 3)
        assert shard.read("bgbn8n", "flow").shape == (75, 2, 64, 64)
        assert shard.read("bgbn8n", "heatmaps").shape == (75, 15, 96, 96)
        assert shard.read("bgbn8n", "mfcc_cran").shape == (75, 35, 12)
        assert shard.read("bgbn8n", "mfcc").shape == (75, 20, 13)
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


def test_stage_summary_counts_clips_frames_and_causes(pipeline):
    from a2v.stages import summary

    out = pipeline["out"]
    tables = {"s1": {"extract": out / "extract.tsv", "align": out / "align.tsv", "features": out / "features.tsv"}}
    table = pd.read_csv(summary.run(tables, out / "summary.tsv"), sep="\t").set_index(["stage", "speaker"])
    n_ok = len(GOOD) + len(ODD_OK)
    ext, ali, fea = table.loc[("extract", "s1")], table.loc[("align", "s1")], table.loc[("features", "s1")]
    assert (ext.clips_in, ext.clips_ok, ext.skipped_MediaError) == (n_ok + len(SKIPPED), n_ok + 3, 4)
    assert (ali.clips_in, ali.clips_ok, ali.skipped_NoFaceError, ali.skipped_MultipleFacesError) == (n_ok + 3, n_ok, 2, 1)
    assert ext.frames_kept == 75 * (n_ok + 3) and ali.frames_in == ext.frames_kept
    kept = int(_table(out / "align.tsv").loc["bgbn6n", "frames_kept"])
    assert ali.frames_kept == 75 * (n_ok - 1) + kept == fea.frames_kept
    assert table.loc[("align", "all")].clips_skipped == 3


def test_speakers_share_a_shard_and_keep_their_own_ids(tmp_path):
    """``speakers_per_shard: 2``: s1 and s2 go through extract, align and features as one shard
    ``s1__s2``, the unseen s31 as a shard of its own; every clip keeps its speaker, also where
    both speakers have a clip of the same id, and select, the summary, the readers and the
    training clip list see each speaker's clips under its own id."""
    from a2v.datasets.source import speaker_shards
    from a2v.features.shard import open_shards
    from a2v.stages import select, summary
    from a2v.stages.preprocess import build_shards
    from a2v.training.data import resolve_clips
    from conftest import demo_config, make_corpus

    corpus = make_corpus(tmp_path / "corpus", {"s1": ["bgbn8n"], "s2": ["swwp2s"], "s31": ["bgiq6p"]})
    (corpus / "s2" / "swwp2s.mpg").rename(corpus / "s2" / "bgbn8n.mpg")  # s2's own video under an id s1 has too
    (corpus / "alignments" / "s2" / "swwp2s.align").unlink()
    out = tmp_path / "results"
    out.mkdir()
    config = demo_config(corpus, out, 64, content_encoder=None)  # no Whisper: this is about the layout
    grid = config["datasets"]["grid"]
    grid.update(speakers=["s2", "s1"], unseen_speakers=["s31"], speakers_per_shard=2)
    assert speaker_shards(grid) == {"s1__s2": ["s1", "s2"], "s31": ["s31"]}  # unseen speakers apart

    shard = build_shards(config, "grid", out)["s1__s2"]
    assert shard == out / "features" / "grid" / "s1__s2.h5" and (out / "interim" / "grid" / "s1__s2" / "aligned.h5").is_file()
    index = out / "grid" / "index.tsv"
    interim = out / "interim" / "grid" / "s31"  # the unseen speaker's shard, as the workflow makes it
    ext = extract.run(config, index, "s31", interim / "extract.h5", interim / "extract.tsv")
    ali = align.run(config, ext, "s31", interim / "aligned.h5", interim / "align.tsv")
    unseen = features.run(config, "grid", "s31", index, ext, ali, out / "features" / "grid" / "s31.h5",
                          out / "features" / "grid" / "s31.tsv")

    keys = ["s1/bgbn8n", "s2/bgbn8n"]
    with ShardReader(shard) as reader, ShardReader(unseen) as single:
        assert reader.speakers == ["s1", "s2"] and "speaker" not in reader.attrs and reader.clip_ids == keys
        for key in keys:
            speaker, clip = reader.split(key)
            assert reader.clip_attrs(key)["source"] == str(corpus / speaker / f"{clip}.mpg")
        assert reader.clip_attrs("s1/bgbn8n")["words"] == ["bin", "green", "by", "n", "eight", "now"]
        assert not np.array_equal(reader.read("s1/bgbn8n", "mel"), reader.read("s2/bgbn8n", "mel"))
        assert single.speakers == ["s31"] and single.attrs["speaker"] == "s31" and single.clip_ids == ["bgiq6p"]
        s2_mel = reader.read("s2/bgbn8n", "mel")
    assert _table(out / "features" / "grid" / "s1__s2.tsv")["speaker"].tolist() == ["s1", "s2"]

    exp = {"select": {"n_test": 1, "seed": 0, "balance": {"enabled": False}}}
    split = pd.read_csv(select.run(config, exp, [shard], tmp_path / "split.tsv", unseen_shards=[unseen]),
                        sep="\t", dtype={"clip_id": str})
    assert sorted(zip(split.speaker, split.clip_id)) == [("s1", "bgbn8n"), ("s2", "bgbn8n"), ("s31", "bgiq6p")]
    assert set(split.loc[split.split.isin(["train", "test"]), "speaker"]) == {"s1", "s2"}
    assert split.loc[split.speaker == "s31", "split"].tolist() == ["test_unseen"]

    readers = open_shards([shard, unseen])  # what generate_test, evaluate and report look clips up in
    try:
        assert sorted(readers) == [("grid", "s1"), ("grid", "s2"), ("grid", "s31")]
        assert readers[("grid", "s2")].clip_ids == ["bgbn8n"] and readers[("grid", "s2")].attrs["speaker"] == "s2"
        assert np.array_equal(readers[("grid", "s2")].read("bgbn8n", "mel"), s2_mel)
    finally:
        for r in readers.values():
            r.close()
    assert resolve_clips([shard, unseen], [("s2", "bgbn8n"), ("s1", "bgbn8n"), ("s31", "bgiq6p")]) == [
        (str(shard), "s2/bgbn8n"), (str(shard), "s1/bgbn8n"), (str(unseen), "bgiq6p")]

    table = pd.read_csv(summary.run(summary.layout_tables(out, "grid", speaker_shards(grid)), tmp_path / "summary.tsv"),
                        sep="\t").set_index(["stage", "speaker"])
    assert [table.loc[("features", s)].clips_ok for s in ("s1", "s2", "s31", "all")] == [1, 1, 1, 3]
