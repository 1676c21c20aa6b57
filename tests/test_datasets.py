"""Corpus adapters (GRID, Lombard GRID, CREMA-D, VoxCeleb2, a plain folder), the dataset index
and safe archive handling, on the embedded real GRID clips (renamed/remuxed into each corpus's
own layout)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import zipfile

import pytest

from a2v.datasets.cremad import SENTENCES, CremaDAdapter, sentence_words
from a2v.datasets.folder import FolderAdapter, transcript_words
from a2v.datasets.grid import GridAdapter, parse_align, words_from_code
from a2v.datasets.lombard import LombardGridAdapter, parse_alignment, word_spans
from a2v.datasets.record import ClipRecord, read_index, write_index
from a2v.datasets.registry import ADAPTERS, make_adapter
from a2v.datasets.source import resolve_source, safe_extract
from a2v.datasets.voxceleb2 import VoxCeleb2Adapter, split_clip_id
from a2v.errors import ArchiveError, ConfigError, MediaError


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


# --- index: the audio and meta columns -----------------------------------------------------


def test_index_round_trips_audio_and_meta(tmp_path):
    recs = [
        ClipRecord("crema_d", "1001", "DFA_ANG_XX", "/v/1001_DFA_ANG_XX.flv", "", ("don't", "forget"),
                   "/a/1001_DFA_ANG_XX.wav", {"emotion": "ANG", "intensity": "XX", "sentence": "DFA"}),
        ClipRecord("grid", "s1", "bgbn8n", "/v/bgbn8n.mpg", "/t/bgbn8n.align", ("bin",)),  # defaults
        ClipRecord("folder", "default", "a__b", "/v/a/b.mp4", meta={"path": "a/b.mp4", "note": 'tab\t "quoted" é'}),
    ]
    back = read_index(write_index(recs, tmp_path / "index.tsv"))
    assert back == recs
    assert back[0].audio.endswith(".wav") and back[0].meta["emotion"] == "ANG"
    assert back[1].audio == "" and back[1].meta == {}
    assert len({hash(r) for r in back}) == 3  # meta is left out of the hash


def test_old_index_without_audio_meta_still_reads(tmp_path):
    path = tmp_path / "old.tsv"
    path.write_text(
        "dataset\tspeaker\tclip_id\tvideo\ttranscript\twords\n"
        'grid\ts1\tbgbn8n\t/x/s1/bgbn8n.mpg\t\t"[""bin"", ""green""]"\n'
    )
    [rec] = read_index(path)
    assert rec == ClipRecord("grid", "s1", "bgbn8n", "/x/s1/bgbn8n.mpg", "", ("bin", "green"), "", {})
    path.write_text("dataset\tspeaker\tclip_id\tvideo\n")
    with pytest.raises(ValueError, match="transcript"):
        read_index(path)


# --- real media in each corpus's layout, made once from the embedded GRID clips --------------


def _ffmpeg(*args):
    from a2v.io.ffmpeg_bin import ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-nostdin", "-v", "error", "-y", *map(str, args)], check=True, capture_output=True)


@pytest.fixture(scope="module")
def media(tmp_path_factory, grid_sample):
    """A .mov and an .mp4 (GRID clips remuxed), a video-only .flv (transcoded) and a .wav."""
    from a2v.io.audio import load_audio, write_wav

    d = tmp_path_factory.mktemp("media")
    src = grid_sample / "s1" / "bgbn8n.mpg"
    _ffmpeg("-i", src, "-c", "copy", d / "bgbn8n.mov")
    _ffmpeg("-i", grid_sample / "s1" / "lgbgzp.mpg", "-c", "copy", d / "lgbgzp.mp4")
    _ffmpeg("-i", src, "-an", "-c:v", "flv1", "-q:v", "5", d / "bgbn8n_silent.flv")  # no audio stream at all
    write_wav(d / "bgbn8n.wav", load_audio(src))
    return d


# --- GRID: base-class behaviour -------------------------------------------------------------


def test_grid_ignores_unsafe_names_and_rejects_duplicate_ids(grid_sample, tmp_path):
    (tmp_path / "s1").mkdir()
    shutil.copy(grid_sample / "s1" / "bgbn8n.mpg", tmp_path / "s1")
    shutil.copy(grid_sample / "s1" / "bgbn8n.mpg", tmp_path / "s1" / "bgbn8n copy.mpg")
    adapter = GridAdapter(tmp_path)
    assert [r.clip_id for r in adapter.clips()] == ["bgbn8n"]
    assert adapter.ignored == [str(tmp_path / "s1" / "bgbn8n copy.mpg")]
    shutil.copy(grid_sample / "s1" / "bgbn8n.mpg", tmp_path / "s1" / "bgbn8n.mp4")
    with pytest.raises(MediaError, match=r"bgbn8n\.(mp4|mpg).*also given by .*bgbn8n\.(mpg|mp4)"):
        adapter.clips(["s1"])


# --- Lombard GRID ---------------------------------------------------------------------------


def _lombard_alignment(grid_align, name, path):
    """A Lombard-GRID-style phone alignment (JSON) built from a real GRID word alignment: each
    word's CMU phones share its interval, tagged _B/_I/_E (or _S); silences untagged."""
    from a2v.selection.phonemes import words_to_phonemes  # CMU dictionary, stress removed

    phones = []
    for start, end, word in parse_align(grid_align):
        if word in ("sil", "sp"):
            phones.append({"phone": "SIL", "offset": start, "duration": end - start})
            continue
        ph = [p.lower() for p in words_to_phonemes([word])]
        step = (end - start) / len(ph)
        for i, p in enumerate(ph):
            tag = "S" if len(ph) == 1 else "B" if i == 0 else "E" if i == len(ph) - 1 else "I"
            phones.append({"phone": f"{p}_{tag}", "offset": round(start + i * step, 4), "duration": round(step, 4)})
    path.write_text(json.dumps({name: phones}))
    return path


@pytest.fixture
def lombard_root(tmp_path, grid_sample, media):
    from a2v.io.audio import load_audio, write_wav

    lg = tmp_path / "lombardgrid"
    for sub in ("front", "side", "audio", "alignment"):
        (lg / sub).mkdir(parents=True)
    shutil.copy(media / "bgbn8n.mov", lg / "front" / "s2_l_bgbn8n.mov")
    shutil.copy(media / "bgbn8n.mov", lg / "side" / "s2_l_bgbn8n.mov")
    shutil.copy(media / "bgbn8n.wav", lg / "audio" / "s2_l_bgbn8n.wav")
    _lombard_alignment(grid_sample / "alignments" / "s1" / "bgbn8n.align", "s2_l_bgbn8n", lg / "alignment" / "s2_l_bgbn8n.json")
    shutil.copy(media / "bgbn8n.mov", lg / "front" / "s2_p_lgbgzp.mov")
    shutil.copy(media / "bgbn8n.mov", lg / "front" / "s2_p_sbit3_WRONG_sbit3s.mov")  # misread, relabelled
    shutil.copy(media / "bgbn8n.mov", lg / "front" / "s2_l_bah2s_WRONG_#sil.mov")  # nothing said
    shutil.copy(media / "bgbn8n.mov", lg / "front" / "s2_x_bbaf2n.mov")  # no such condition
    shutil.copy(media / "bgbn8n.mov", lg / "front" / "s10_l_swbc3a.mov")
    write_wav(lg / "audio" / "s10_l_swbc3a.wav", load_audio(grid_sample / "s1" / "swbc3a.mpg"))
    # an alignment of another sentence length: set aside, the clip is kept
    bad = _lombard_alignment(grid_sample / "alignments" / "s1" / "bgbn8n.align", "s10_l_swbc3a", lg / "alignment" / "s10_l_swbc3a.json")
    data = json.loads(bad.read_text())
    data["s10_l_swbc3a"] = [p for p in data["s10_l_swbc3a"] if not p["phone"].startswith(("n_", "aw_"))]  # drop "now"
    bad.write_text(json.dumps(data))
    return tmp_path


def test_lombard_alignment_parses_to_word_spans(lombard_root, grid_sample):
    phones = parse_alignment(lombard_root / "lombardgrid" / "alignment" / "s2_l_bgbn8n.json")
    assert phones[0][2] == "SIL" and phones[1][2] == "b_B"
    spans = word_spans(phones)
    grid_words = [(s, e) for s, e, w in parse_align(grid_sample / "alignments" / "s1" / "bgbn8n.align") if w not in ("sil", "sp")]
    assert len(spans) == 6
    assert [t for span in spans for t in span] == pytest.approx([t for span in grid_words for t in span], abs=1e-3)
    with pytest.raises(ValueError, match="continues no word"):
        word_spans([(0.0, 0.1, "ih_I")])


def test_word_times_and_frames_from_grid_and_lombard_alignments(lombard_root, grid_sample):
    from a2v.datasets.word_timing import word_frames, word_times

    grid = next(r for r in GridAdapter(grid_sample).clips(["s1"]) if r.clip_id == "bgbn8n")
    times = word_times(grid)
    assert [w for _, _, w in times] == ["bin", "green", "by", "n", "eight", "now"]
    assert times[0] == pytest.approx((0.82, 1.01, "bin"))  # 20500 and 25250 in 1/25000 s
    lombard = next(r for r in LombardGridAdapter(lombard_root).clips(["s2"]) if r.clip_id == "l_bgbn8n")
    assert [(pytest.approx(a, abs=1e-3), pytest.approx(b, abs=1e-3), w) for a, b, w in times] == word_times(lombard)
    # 25 fps: bin covers frames 20.5–25.25 → [20, 26); a clip starting at source frame 22 of 40 frames
    assert word_frames(times, 25.0, 0, 75)[0] == (20, 26, "bin")
    assert word_frames(times, 25.0, 22, 40)[0] == (0, 4, "bin")
    assert word_frames(times, 25.0, 22, 10)[-1] == (8, 10, "by")  # "by" (frames 30.75–33.5) cut at the clip end
    assert word_times(ClipRecord("x", "s1", "c", "v.mp4")) == []


def test_lombard_adapter_indexes_views_conditions_and_audio(lombard_root):
    lg = lombard_root / "lombardgrid"
    adapter = LombardGridAdapter(lombard_root)
    assert adapter.speakers() == ["s2", "s10"]
    recs = adapter.clips(["s2"])
    assert [r.clip_id for r in recs] == ["l_bgbn8n", "p_lgbgzp", "p_sbit3_WRONG_sbit3s"]
    lomb, plain, wrong = recs
    assert lomb.words == ("bin", "green", "by", "n", "eight", "now")
    assert lomb.video == str(lg / "front" / "s2_l_bgbn8n.mov") and lomb.audio == str(lg / "audio" / "s2_l_bgbn8n.wav")
    assert lomb.transcript == str(lg / "alignment" / "s2_l_bgbn8n.json")
    assert lomb.meta == {"condition": "lombard", "view": "front", "utterance": "bgbn8n"}
    assert plain.meta["condition"] == "plain" and plain.audio == "" and plain.transcript == ""
    assert plain.words == words_from_code("lgbgzp")
    assert wrong.words == words_from_code("sbit3s") and wrong.meta["prompted"] == "sbit3"
    assert sorted(adapter.ignored) == sorted(str(lg / "front" / n) for n in ("s2_l_bah2s_WRONG_#sil.mov", "s2_x_bbaf2n.mov"))

    [s10] = adapter.clips(["s10"])
    assert s10.clip_id == "l_swbc3a" and s10.transcript == "" and s10.audio.endswith("s10_l_swbc3a.wav")
    assert adapter.ignored == [str(lg / "alignment" / "s10_l_swbc3a.json")]

    side = make_adapter("lombard_grid", lg, "lg", view="side")  # root may be lombardgrid/ itself
    [rec] = side.clips()
    assert rec.dataset == "lg" and rec.video == str(lg / "side" / "s2_l_bgbn8n.mov") and rec.meta["view"] == "side"
    with pytest.raises(MediaError, match="s3"):
        adapter.clips(["s3"])
    with pytest.raises(ConfigError, match="view"):
        make_adapter("lombard_grid", lg, "lg", view="top")
    with pytest.raises(ConfigError, match="camera"):
        make_adapter("lombard_grid", lg, "lg", camera="side")


def test_ingest_passes_config_options_to_the_adapter(lombard_root, tmp_path, repo):
    import yaml

    from a2v.config import load_config
    from a2v.errors import A2VError
    from a2v.stages import ingest

    out = tmp_path / "results"
    out.mkdir()
    ds = {"adapter": "lombard_grid", "source": str(lombard_root), "speakers": ["s2"], "options": {"view": "side"}}
    (out / "o.yaml").write_text(yaml.safe_dump({"resources_dir": str(out / "res"), "datasets": {"lg": ds}}))
    config = load_config([repo / "config" / "config.yaml", out / "o.yaml"])
    [rec] = read_index(ingest.run(config, "lg", out / "index.tsv"))
    assert rec.video.endswith("side/s2_l_bgbn8n.mov") and rec.meta["view"] == "side"
    ds["options"] = {"view": "top"}
    (out / "o.yaml").write_text(yaml.safe_dump({"resources_dir": str(out / "res"), "datasets": {"lg": ds}}))
    with pytest.raises(A2VError, match="view"):
        ingest.run(load_config([repo / "config" / "config.yaml", out / "o.yaml"]), "lg", out / "index.tsv")


# --- CREMA-D --------------------------------------------------------------------------------


@pytest.fixture
def crema_root(tmp_path, media):
    root = tmp_path / "CREMA-D"
    (root / "VideoFlash").mkdir(parents=True)
    (root / "AudioWAV").mkdir()
    shutil.copy(media / "bgbn8n_silent.flv", root / "VideoFlash" / "1001_DFA_ANG_XX.flv")
    shutil.copy(media / "bgbn8n.wav", root / "AudioWAV" / "1001_DFA_ANG_XX.wav")
    shutil.copy(media / "bgbn8n_silent.flv", root / "VideoFlash" / "1001_IEO_HAP_HI.flv")  # no wav
    shutil.copy(media / "bgbn8n_silent.flv", root / "VideoFlash" / "1001_XYZ_ANG_XX.flv")  # no such sentence
    shutil.copy(media / "bgbn8n_silent.flv", root / "VideoFlash" / "1091_WSI_SAD_XX.flv")
    return root


def test_crema_sentences_are_in_the_pronouncing_dictionary():
    from a2v.selection.phonemes import words_to_phonemes

    assert len(SENTENCES) == 12
    for sid in SENTENCES:
        assert words_to_phonemes(sentence_words(sid)), sid
    assert sentence_words("ITH") == ("i", "think", "i", "have", "a", "doctor's", "appointment")


def test_crema_adapter_reads_labels_and_wav(crema_root):
    adapter = CremaDAdapter(crema_root)
    assert adapter.speakers() == ["1001", "1091"]
    recs = adapter.clips(["1001"])
    assert [r.clip_id for r in recs] == ["DFA_ANG_XX", "IEO_HAP_HI"]
    dfa, ieo = recs
    assert dfa.words == ("don't", "forget", "a", "jacket")
    assert dfa.meta == {"sentence": "DFA", "emotion": "ANG", "intensity": "XX"}
    assert dfa.audio == str(crema_root / "AudioWAV" / "1001_DFA_ANG_XX.wav") and dfa.video.endswith("1001_DFA_ANG_XX.flv")
    assert ieo.audio == "" and ieo.words == ("it's", "eleven", "o'clock") and ieo.meta["intensity"] == "HI"
    assert adapter.ignored == [str(crema_root / "VideoFlash" / "1001_XYZ_ANG_XX.flv")]
    with pytest.raises(MediaError, match="1002"):
        adapter.clips(["1002"])


def test_crema_ingest_and_extract_use_the_wav(crema_root, tmp_path, repo):
    import h5py
    import numpy as np
    import yaml

    from a2v.config import load_config
    from a2v.io.audio import load_audio
    from a2v.stages import extract, ingest

    out = tmp_path / "results"
    out.mkdir()
    (out / "override.yaml").write_text(yaml.safe_dump({
        "results_dir": str(out), "resources_dir": str(out / "resources"),
        "datasets": {"crema": {"adapter": "crema_d", "source": str(crema_root), "speakers": ["1001"]}},
        "preprocess": {"crop_size": 64, "min_frames": 25},
    }))
    config = load_config([repo / "config" / "config.yaml", out / "override.yaml"])
    index = ingest.run(config, "crema", out / "index.tsv", log_file=out / "ingest.log")
    recs = read_index(index)
    assert [r.clip_id for r in recs] == ["DFA_ANG_XX", "IEO_HAP_HI"]
    assert recs[0].audio == str(crema_root / "AudioWAV" / "1001_DFA_ANG_XX.wav")
    assert recs[0].meta["emotion"] == "ANG"
    assert "1001_XYZ_ANG_XX.flv" in (out / "ingest.log").read_text()

    extract.run(config, index, "1001", out / "extract.h5", out / "extract.tsv")
    with h5py.File(out / "extract.h5", "r") as h5:
        # the .flv has no audio stream: the clip decodes only because the wav is used
        assert list(h5) == ["DFA_ANG_XX"] and h5["DFA_ANG_XX"].attrs["n_frames"] == 75
        np.testing.assert_array_equal(h5["DFA_ANG_XX"]["audio"][:], load_audio(recs[0].audio))
    status = (out / "extract.tsv").read_text()
    assert "IEO_HAP_HI" in status and "no audio stream" in status


# --- VoxCeleb2 ------------------------------------------------------------------------------


def test_voxceleb2_adapter_layouts_and_ids(tmp_path, media):
    mp4 = media / "lgbgzp.mp4"
    for rel in ("dev/mp4/id00012/1zcIwhmdeo4/00001.mp4", "dev/mp4/id00012/1zcIwhmdeo4/00002.mp4",
                "dev/mp4/id00012/a_b-c_d_e-f/00001.mp4", "test/mp4/id00017/01dfn2spqyE/00001.mp4",
                "dev/mp4/id00012/short/00001.mp4", "dev/mp4/id00012/1zcIwhmdeo4/clip.mp4"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(mp4, tmp_path / rel)
    (tmp_path / "dev/mp4/id00012/1zcIwhmdeo4/00003.txt").write_text("not a video")

    adapter = VoxCeleb2Adapter(tmp_path)
    assert adapter.speakers() == ["id00012", "id00017"]
    recs = adapter.clips()
    assert [(r.speaker, r.clip_id) for r in recs] == [
        ("id00012", "1zcIwhmdeo4__00001"), ("id00012", "1zcIwhmdeo4__00002"),
        ("id00012", "a_b-c_d_e-f__00001"), ("id00017", "01dfn2spqyE__00001"),
    ]
    assert all(r.words == () and r.audio == "" and r.transcript == "" for r in recs)
    assert recs[2].meta == {"youtube_id": "a_b-c_d_e-f", "segment": "00001", "split": "dev"}
    assert recs[3].meta["split"] == "test" and recs[3].video == str(tmp_path / "test/mp4/id00017/01dfn2spqyE/00001.mp4")
    assert split_clip_id(recs[2].clip_id) == ("a_b-c_d_e-f", "00001")
    assert sorted(adapter.ignored) == sorted(str(tmp_path / p) for p in (
        "dev/mp4/id00012/short", "dev/mp4/id00012/1zcIwhmdeo4/clip.mp4", "dev/mp4/id00012/1zcIwhmdeo4/00003.txt"))
    # the root may also be a split folder (test zip: test/mp4) or the mp4 folder itself
    assert [r.meta["split"] for r in VoxCeleb2Adapter(tmp_path / "test").clips()] == ["test"]
    assert {r.meta["split"] for r in VoxCeleb2Adapter(tmp_path / "dev" / "mp4").clips(["id00012"])} == {"dev"}
    with pytest.raises(MediaError, match="id00099"):
        adapter.clips(["id00099"])


# --- a plain folder -------------------------------------------------------------------------


def test_transcript_words_rule():
    text = "Don't stop,\n\"she said\" — 'now'! It\u2019s 5 o'clock; well-known rock_n_roll."
    assert transcript_words(text) == ("don't", "stop", "she", "said", "now", "it's", "5", "o'clock",
                                      "well", "known", "rock", "n", "roll")


def test_folder_adapter_speakers_ids_transcripts_audio(tmp_path, grid_sample, media):
    clip = grid_sample / "s1" / "bgbn8n.mpg"
    (tmp_path / "alice" / "take1").mkdir(parents=True)
    (tmp_path / "bob").mkdir()
    shutil.copy(media / "lgbgzp.mp4", tmp_path / "alice" / "take1" / "intro.mp4")
    (tmp_path / "alice" / "take1" / "intro.txt").write_text("Bin green, by N eight — now!\n")
    shutil.copy(media / "bgbn8n.wav", tmp_path / "alice" / "take1" / "intro.wav")
    shutil.copy(media / "bgbn8n.mov", tmp_path / "alice" / "outro.MOV")
    (tmp_path / "alice" / "notes.pdf").write_bytes(b"%PDF")
    (tmp_path / "alice" / ".DS_Store").write_bytes(b"")
    shutil.copy(clip, tmp_path / "bob" / "clip.mpg")
    shutil.copy(clip, tmp_path / "loose.mpg")
    (tmp_path / "empty").mkdir()

    adapter = make_adapter("folder", tmp_path, "mine")
    assert adapter.speakers() == ["default", "alice", "bob"]
    recs = adapter.clips(["alice"])
    assert [r.clip_id for r in recs] == ["outro", "take1__intro"]
    outro, intro = recs
    assert intro.words == ("bin", "green", "by", "n", "eight", "now")
    assert intro.transcript == str(tmp_path / "alice" / "take1" / "intro.txt")
    assert intro.audio == str(tmp_path / "alice" / "take1" / "intro.wav")
    assert intro.meta == {"path": "alice/take1/intro.mp4"}
    assert outro.words == () and outro.transcript == "" and outro.audio == ""
    assert adapter.ignored == [str(tmp_path / "alice" / "notes.pdf")]
    [loose] = adapter.clips(["default"])
    assert loose.clip_id == "loose" and loose.video == str(tmp_path / "loose.mpg")
    assert [r.speaker for r in adapter.clips()] == ["default", "alice", "alice", "bob"]
    with pytest.raises(MediaError, match="carol"):
        adapter.clips(["carol"])


@pytest.mark.parametrize("files, match", [
    (["alice/my clip.mp4"], r"my clip\.mp4: clip id 'my clip' would contain ' '"),
    (["alice/a.b.mp4"], r"a\.b\.mp4: .*'\.'.*rename"),
    (["alice/a.mp4", "alice/a.mov"], r"a\.(mov|mp4): clip id 'a' of speaker alice is also given by .*a\.(mp4|mov)"),
    (["alice/x__y.mp4", "alice/x/y.mp4"], r"clip id 'x__y' of speaker alice is also given by"),
    (["bad-name/a.mp4"], r"bad-name: speaker folder name 'bad-name'.*rename"),
])
def test_folder_adapter_rejects_unsafe_or_duplicate_ids(tmp_path, grid_sample, files, match):
    for rel in files:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(grid_sample / "s1" / "bgbn8n.mpg", tmp_path / rel)
    with pytest.raises(MediaError, match=match):
        FolderAdapter(tmp_path).clips()


def test_registry_names_and_unknown_adapter(tmp_path):
    assert sorted(ADAPTERS) == ["crema_d", "folder", "grid", "lombard_grid", "voxceleb2"]
    with pytest.raises(ConfigError, match="unknown dataset adapter"):
        make_adapter("lrs3", tmp_path, "x")
    assert make_adapter("grid", tmp_path, "g").dataset == "g"
