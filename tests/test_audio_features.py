"""Per-frame audio features on real GRID speech, with known answers for the time base."""

from __future__ import annotations

import numpy as np
import pytest

from a2v.audio.features import (FEATURE_KEYS, AudioFeatureConfig, audio_feature_chunks, audio_features, mfcc_windows,
                                quantize_energy, quantize_f0)
from a2v.audio.timebase import frame_centres_s, frame_windows, n_video_frames
from a2v.datasets.grid import parse_align
from a2v.io.audio import load_audio

CFG = AudioFeatureConfig()


@pytest.fixture(scope="module")
def speech(s1_clip):
    return load_audio(s1_clip)


@pytest.fixture(scope="module")
def feats(speech):
    return audio_features(speech, 75, CFG)


def test_windows_centred_on_frames():
    sr, fps = 16000, 25.0
    audio = np.arange(16000, dtype=np.float32)  # sample value = its index
    w = frame_windows(audio, sr, fps, 25, 0.2)
    assert w.shape == (25, 3200)
    # window t is centred on (t + 0.5) / fps: its middle sample is that index
    for t in (0, 5, 24):
        assert w[t, 1600] == pytest.approx((t + 0.5) / fps * sr)
    assert (w[0, :1000] == 0).all()  # zero padding before the signal
    assert np.allclose(np.diff(w[:, 1600]), sr / fps)  # stride = sr / fps
    np.testing.assert_array_equal(frame_windows(audio, sr, fps, 5, 0.2, first_frame=20), w[20:25])  # a chunk's windows
    assert frame_centres_s(2, 25.0).tolist() == [0.02, 0.06]
    assert n_video_frames(48000, 16000, 25.0) == 75


def test_shapes_and_dtypes(feats):
    assert feats["mfcc"].shape == (75, 20, 13) and feats["mfcc"].dtype == np.float32
    assert feats["mel"].shape == (75, 256)
    for k in ("f0", "energy"):
        assert feats[k].shape == (75,) and feats[k].dtype == np.float32
    for k in ("f0_bin", "energy_bin"):
        assert feats[k].dtype == np.uint8


def test_f0_voiced_only_during_words(feats, s1_clip, grid_sample):
    words = parse_align(grid_sample / "alignments" / "s1" / "bgbn8n.align")
    speech = np.zeros(75, bool)
    for start, end, word in words:
        if word not in ("sil", "sp"):
            speech[int(start * 25): int(end * 25)] = True
    voiced = feats["f0"] > 0
    assert voiced[speech].mean() > 0.4
    assert voiced[~speech].mean() < 0.15
    f0 = feats["f0"][voiced]
    assert 70 < np.median(f0) < 200  # s1 is a male speaker


def test_energy_higher_in_speech(feats, grid_sample):
    words = parse_align(grid_sample / "alignments" / "s1" / "bgbn8n.align")
    first_word_start = next(s for s, e, w in words if w != "sil")
    lead = int(first_word_start * 25) - 3
    assert np.median(feats["energy"][lead + 6:]) > 3 * np.median(feats["energy"][:lead])


def test_quantisation_known_answers():
    f0 = np.array([0.0, CFG.f0_min_hz, CFG.f0_max_hz, 10.0, 10000.0], np.float32)
    assert quantize_f0(f0, CFG).tolist() == [0, 1, 255, 1, 255]
    e = np.exp(np.array([CFG.log_energy_min, CFG.log_energy_max, 100.0]))
    assert quantize_energy(e, CFG).tolist() == [0, 255, 255]


def test_mfcc_tracks_speech_onset(feats, speech):
    # c0 (log energy) at the 20 sub-frames of a silent frame is far below a spoken frame's
    assert feats["mfcc"][2, :, 0].mean() < feats["mfcc"][40, :, 0].mean() - 50


def test_errors():
    with pytest.raises(ValueError):
        audio_features(np.zeros(0, np.float32), 10)
    with pytest.raises(ValueError):
        audio_features(np.ones(100, np.float32), 0)


def test_chunks_equal_the_whole_clip(feats, speech):
    """``a2v generate`` computes the features 4 s at a time: on a real clip in chunks of 25 frames
    (and 7 for the pitch and energy, the tracks that read audio beyond the chunk), every feature
    equals the whole clip's exactly."""
    chunks = list(audio_feature_chunks(speech, 75, CFG, chunk=25))
    assert [len(c["mel"]) for c in chunks] == [25, 25, 25] and all(tuple(c) == FEATURE_KEYS for c in chunks)
    for key in FEATURE_KEYS:
        np.testing.assert_array_equal(np.concatenate([c[key] for c in chunks]), feats[key], err_msg=key)
    small = list(audio_feature_chunks(speech, 75, CFG, chunk=7, keys=("f0_bin", "energy")))
    assert [tuple(c) for c in small[:1]] == [("f0_bin", "energy")] and len(small) == 11
    for key in ("f0_bin", "energy"):
        np.testing.assert_array_equal(np.concatenate([c[key] for c in small]), feats[key], err_msg=key)
    # why the MFCCs need the clip's loudest sub-frame: alone, the silent first frames floor lower
    assert not np.array_equal(mfcc_windows(speech, 5, CFG), feats["mfcc"][:5])
    with pytest.raises(ValueError, match="unknown"):
        next(audio_feature_chunks(speech, 75, CFG, keys=("mfcc", "pitch")))
    with pytest.raises(ValueError, match="chunk"):
        next(audio_feature_chunks(speech, 75, CFG, chunk=0))


def test_cran_mfcc_map_350ms_without_c0(feats, speech):
    cran = feats["mfcc_cran"]
    assert cran.shape == (75, 35, 12) and cran.dtype == np.float32
    # c1..c12 of the 13 MFCCs of the same 35 sub-frames (CRAN §4.2 drops the first coefficient)
    full = mfcc_windows(speech, 75, CFG, subframes=35, drop_c0=False)
    assert full.shape == (75, 35, 13)
    np.testing.assert_allclose(cran, full[:, :, 1:], rtol=1e-6)
    # Known answer for the time base: one video frame is 40 ms = 4 hops of 10 ms, so sub-frame
    # k + 4 of frame t analyses exactly the samples of sub-frame k of frame t + 1.
    np.testing.assert_allclose(cran[10:60, 4:], cran[11:61, :-4], rtol=1e-4, atol=1e-3)
    # and the 350 ms map of frame t spans the 200 ms MFCC window of the same frame: same grid
    # offset by half a hop, so the maps agree in their overall level during speech
    assert np.corrcoef(cran[:, :, 0].mean(1), feats["mfcc"][:, :, 1].mean(1))[0, 1] > 0.8
