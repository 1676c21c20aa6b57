"""Known-answer tests of a2v.metrics, on real GRID clips (resources/grid_sample)."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter, uniform_filter

from a2v.io.video import read_frames
from a2v.metrics import (
    MOUTH,
    acd,
    acd_from_embeddings,
    blinks_per_second,
    cpbd,
    cpbd_video,
    detect_blinks,
    identity_embeddings,
    lmd,
    psnr,
    ssim,
    word_error_rate,
)
from a2v.metrics.cpbd import rgb_to_luma

GRID = Path(__file__).resolve().parents[1] / "resources" / "grid_sample"
FACE = (slice(20, 276), slice(52, 308))  # 256 x 256 face crop of a 360 x 288 GRID frame
# Where the face lies in that crop, as fractions (left, top, right, bottom): dlib's frontal
# detector box on these clips is about (44-67, 82-116, 151-196, 211-226) px.
GRID_FACE_BOX = (56 / 256, 96 / 256, 186 / 256, 226 / 256)

# CPBD of the luma of one 256 x 256 face-crop frame as computed by the cpbd-py312 1.0.3 package
# (the Python port of the authors' reference code; measured once, not a test dependency).
CPBD_PY312 = {
    ("s1/bgbn8n", 0): 0.3144758735440932,
    ("s31/bgiq6p", 10): 0.4097879282218597,
    ("s2/swwp2s", 30): 0.4043757072802716,
}


def _crop(clip: str) -> np.ndarray:
    return np.ascontiguousarray(read_frames(GRID / f"{clip}.mpg")[:, FACE[0], FACE[1]])


@pytest.fixture(scope="module")
def clips() -> dict[str, np.ndarray]:
    """Decoded 256 x 256 face crops, (75, 256, 256, 3) uint8 RGB."""
    return {name: _crop(name) for name in ("s1/bgbn8n", "s1/lgbm3s", "s31/bgiq6p", "s2/swwp2s")}


# --------------------------------------------------------------------------- SSIM / PSNR


def test_identical_videos_score_perfectly(clips):
    real = clips["s1/bgbn8n"][:10]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert psnr(real, real.copy()) == math.inf
    assert ssim(real, real.copy()) == pytest.approx(1.0)


def test_psnr_known_answer_unit_error(clips):
    real = clips["s1/bgbn8n"][:5]
    fake = real ^ np.uint8(1)  # every value off by exactly 1 -> MSE = 1
    assert psnr(real, fake) == pytest.approx(20 * math.log10(255), abs=1e-9)


def test_psnr_is_from_clip_mse_not_mean_of_frames(clips):
    real = clips["s1/bgbn8n"][:2]
    fake = real.copy()
    fake[1] = real[1] ^ np.uint8(3)  # frame 0 identical (inf on its own), frame 1 off by 1..3
    mse = np.mean((real.astype(float) - fake.astype(float)) ** 2)
    assert psnr(real, fake) == pytest.approx(10 * math.log10(255**2 / mse))


def _ssim_7x7_uniform(a: np.ndarray, b: np.ndarray) -> float:
    """Independent SSIM: uniform 7x7 window, sample covariance, border 3 cropped, mean of RGB."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    c1, c2, n = (0.01 * 255) ** 2, (0.03 * 255) ** 2, 49
    per_channel = []
    for ch in range(3):
        x, y = a[..., ch], b[..., ch]
        mx, my = uniform_filter(x, 7), uniform_filter(y, 7)
        vx = (uniform_filter(x * x, 7) - mx * mx) * n / (n - 1)
        vy = (uniform_filter(y * y, 7) - my * my) * n / (n - 1)
        cov = (uniform_filter(x * y, 7) - mx * my) * n / (n - 1)
        s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
        per_channel.append(s[3:-3, 3:-3].mean())
    return float(np.mean(per_channel))


def test_ssim_is_mean_of_per_frame_uniform_window_ssim(clips):
    real = clips["s1/bgbn8n"][10:13]
    fake = clips["s1/bgbn8n"][20:23]
    expected = np.mean([_ssim_7x7_uniform(r, f) for r, f in zip(real, fake)])
    assert ssim(real, fake) == pytest.approx(expected, abs=1e-6)


def test_static_baseline_is_worse_than_identity(clips):
    real = clips["s1/bgbn8n"]
    static = np.repeat(real[:1], len(real), axis=0)
    s, p = ssim(real, static), psnr(real, static)
    # measured: SSIM 0.917, PSNR 31.46 dB (a talking head barely moves on GRID)
    assert 0.85 < s < 0.97
    assert 28.0 < p < 35.0


def test_shape_mismatch_raises(clips):
    real = clips["s1/bgbn8n"][:3]
    with pytest.raises(ValueError):
        ssim(real, real[:2])
    with pytest.raises(ValueError):
        psnr(real, real[:, :128])
    with pytest.raises(ValueError):
        psnr(real.astype(np.float32), real.astype(np.float32))


# --------------------------------------------------------------------------- CPBD


def test_luma_matches_bt601_fixed_point():
    pixels = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [0, 0, 0]]], np.uint8)
    assert rgb_to_luma(pixels).tolist() == [[76, 150, 29, 255, 0]]  # PIL convert("L") values


@pytest.mark.parametrize(("clip", "frame"), sorted(CPBD_PY312))
def test_cpbd_matches_reference_implementation(clips, clip, frame):
    gray = rgb_to_luma(clips[clip][frame])
    assert cpbd(gray) == pytest.approx(CPBD_PY312[(clip, frame)], abs=5e-3)


def test_blur_lowers_cpbd(clips):
    gray = rgb_to_luma(clips["s1/bgbn8n"][0])
    blurred = np.clip(np.rint(gaussian_filter(gray.astype(np.float64), 1.0)), 0, 255).astype(np.uint8)
    sharp_score, blurred_score = cpbd(gray), cpbd(blurred)
    assert 0.0 <= blurred_score < sharp_score <= 1.0
    assert blurred_score < 0.5 * sharp_score


def test_cpbd_video_is_mean_over_frames_of_luma(clips):
    frames = clips["s31/bgiq6p"][:4]
    expected = np.mean([cpbd(rgb_to_luma(f)) for f in frames])
    assert cpbd_video(frames) == pytest.approx(expected, abs=1e-12)
    assert 0.0 <= cpbd_video(frames) <= 1.0


def test_static_baseline_cpbd_is_its_first_frame(clips):
    real = clips["s1/bgbn8n"]
    static = np.repeat(real[:1], 3, axis=0)
    assert cpbd_video(static) == pytest.approx(cpbd(rgb_to_luma(real[0])))


def test_cpbd_degenerate_inputs():
    assert cpbd(np.full((128, 128), 90, np.uint8)) == 0.0  # no edge at all
    with pytest.raises(ValueError):
        cpbd(np.zeros((32, 128), np.uint8))
    with pytest.raises(ValueError):
        cpbd(np.zeros((128, 128, 3), np.uint8))


# --------------------------------------------------------------------------- LMD


@pytest.fixture(scope="module")
def landmarks(clips) -> np.ndarray:
    """(5, 68, 2) dlib iBUG-68 landmarks of 5 real s1 frames (256 x 256 crops)."""
    import dlib

    from a2v.face.dlib_models import LANDMARKS_68, shape_predictor

    predictor = shape_predictor(LANDMARKS_68)
    box = dlib.rectangle(*(round(v * 255) for v in GRID_FACE_BOX))
    frames = clips["s1/bgbn8n"][::15]
    return np.array([[(p.x, p.y) for p in predictor(f, box).parts()] for f in frames], dtype=np.float64)


def test_lmd_shift_3_4_is_5(landmarks):
    fake = landmarks.copy()
    fake[:, MOUTH] += (3.0, 4.0)
    assert lmd(landmarks, fake, frame_size=256) == pytest.approx(5.0, abs=1e-12)
    assert lmd(landmarks, landmarks, frame_size=256) == 0.0


def test_lmd_only_mouth_points_count(landmarks):
    fake = landmarks.copy()
    fake[:, :48] += 40.0
    assert lmd(landmarks, fake, frame_size=256) == 0.0
    assert MOUTH == slice(48, 68)


def test_lmd_scales_to_reference_frame(landmarks):
    small = landmarks / 2  # the same face on a 128 x 128 frame
    fake = small.copy()
    fake[:, MOUTH] += (3.0, 4.0)  # 5 px on 128 px = 10 px on 256 px
    assert lmd(small, fake, frame_size=128) == pytest.approx(10.0)
    assert lmd(small, fake, frame_size=128, reference_size=128) == pytest.approx(5.0)
    assert lmd(small, fake, frame_size=512) == pytest.approx(2.5)


def test_lmd_skips_nan_frames(landmarks):
    fake = landmarks.copy()
    fake[:, MOUTH] += (3.0, 4.0)
    fake[0, MOUTH] += 100.0  # a huge error in frame 0 ...
    real = landmarks.copy()
    real[0] = np.nan  # ... that is skipped because the real face was not found there
    fake[1, 50] = np.nan  # one NaN mouth point skips frame 1 too
    assert lmd(real, fake, frame_size=256) == pytest.approx(5.0)
    real[:] = np.nan
    assert math.isnan(lmd(real, fake, frame_size=256))


def test_lmd_rejects_bad_shapes(landmarks):
    with pytest.raises(ValueError):
        lmd(landmarks, landmarks[:-1], frame_size=256)
    with pytest.raises(ValueError):
        lmd(landmarks[:, :20], landmarks[:, :20], frame_size=256)
    with pytest.raises(ValueError):
        lmd(landmarks, landmarks, frame_size=0)


# --------------------------------------------------------------------------- blinks


def _open_eyes(n: int = 75) -> np.ndarray:
    return np.full(n, 0.3)


def test_three_frame_dip_is_one_blink():
    ear = _open_eyes()
    ear[10:13] = 0.12
    assert detect_blinks(ear) == [(10, 13)]
    assert blinks_per_second(ear, fps=25.0) == pytest.approx(1 / 3)


def test_one_frame_dip_is_not_a_blink():
    ear = _open_eyes()
    ear[40] = 0.1
    assert detect_blinks(ear, threshold=0.2, min_frames=2) == []
    assert detect_blinks(ear, threshold=0.2, min_frames=1) == [(40, 41)]
    assert blinks_per_second(ear, fps=25.0, min_frames=2) == 0.0


# Blinks counted by eye on contact sheets of the eye region of every frame (2026-11-30): closed
# lids at frames bgbn8n 46-48 and 54-56; lgbgzp 14-16 and 48-51; pbai5s 4-5, 24-25, 29-32 and
# 42-43 (lids low between, looking down); pwbd8p 17-18, 35-38 and 66-68.
BLINKS_BY_EYE = {"bgbn8n": [46, 54], "lgbgzp": [14, 48], "pbai5s": [4, 24, 29, 42], "pwbd8p": [17, 35, 66]}


@pytest.mark.parametrize("clip", sorted(BLINKS_BY_EYE))
def test_blinks_on_real_grid_clips_match_counts_by_eye(grid_sample, repo, clip):
    """dlib landmarks on the full frames, EAR, and the configured threshold / minimum run find the
    blinks a person counted, each starting within 2 frames of where the lids closed."""
    import yaml

    from a2v.face.ear import eye_aspect_ratio
    from a2v.face.landmarks import DlibBackend

    ev = yaml.safe_load((repo / "config" / "config.yaml").read_text())["evaluate"]
    frames = read_frames(grid_sample / "s1" / f"{clip}.mpg")
    landmarks = DlibBackend()(frames)[0]
    found = detect_blinks(eye_aspect_ratio(landmarks).mean(axis=1), ev["blink_ear_threshold"], ev["blink_min_frames"])
    assert len(found) == len(BLINKS_BY_EYE[clip]), found
    assert all(abs(start - seen) <= 2 for (start, _), seen in zip(found, BLINKS_BY_EYE[clip])), found


def test_nan_frames_are_not_closed():
    ear = _open_eyes(20)
    ear[5:8] = np.nan
    ear[10] = ear[12] = 0.1
    ear[11] = np.nan  # splits 10..12 into two 1-frame dips
    assert detect_blinks(ear) == []
    ear[11] = 0.15
    assert detect_blinks(ear) == [(10, 13)]


def test_blinks_at_clip_ends_threshold_strict_and_rate():
    ear = _open_eyes()
    ear[:2] = 0.1
    ear[-4:] = 0.05
    ear[30:33] = 0.2  # equal to the threshold: open
    assert detect_blinks(ear) == [(0, 2), (71, 75)]
    assert blinks_per_second(ear, fps=25.0) == pytest.approx(2 / 3)


def test_two_eye_ear_is_averaged():
    ear = np.column_stack([_open_eyes(10), _open_eyes(10)])
    ear[3:6] = (0.1, 0.25)  # mean 0.175 < 0.2: closed
    ear[7:9] = (0.1, 0.35)  # mean 0.225: open
    assert detect_blinks(ear) == [(3, 6)]
    with pytest.raises(ValueError):
        detect_blinks(np.zeros((10, 3)))
    with pytest.raises(ValueError):
        blinks_per_second(np.zeros(0), fps=25.0)


# --------------------------------------------------------------------------- ACD


def test_acd_from_embeddings_known_answer():
    real = np.array([[1.0, 0.0], [0.0, 1.0]])
    fake = np.array([[0.0, 1.0], [0.0, 2.0]])
    out = acd_from_embeddings(real, fake)
    assert out["acd_c"] == pytest.approx((1.0 + 0.0) / 2)
    assert out["acd_e"] == pytest.approx((math.sqrt(2) + 1.0) / 2)


@pytest.fixture(scope="module")
def embeddings(clips) -> dict[str, np.ndarray]:
    return {name: identity_embeddings(video[::15], GRID_FACE_BOX) for name, video in clips.items()}


def test_identity_embeddings_shape(embeddings):
    emb = embeddings["s1/bgbn8n"]
    assert emb.shape == (5, 128) and emb.dtype == np.float32
    assert np.all(np.isfinite(emb))


def test_acd_identical_videos_is_zero(clips):
    video = clips["s1/bgbn8n"][::25]
    out = acd(video, video.copy(), face_box=GRID_FACE_BOX)
    assert out["acd_c"] == pytest.approx(0.0, abs=1e-6)
    assert out["acd_e"] == pytest.approx(0.0, abs=1e-6)


def test_acd_same_person_closer_than_different(embeddings):
    same = acd_from_embeddings(embeddings["s1/bgbn8n"], embeddings["s1/lgbm3s"])
    for other in ("s31/bgiq6p", "s2/swwp2s"):
        diff = acd_from_embeddings(embeddings["s1/bgbn8n"], embeddings[other])
        assert same["acd_e"] < 0.6 < diff["acd_e"]  # dlib's same-person threshold
        assert same["acd_c"] < diff["acd_c"]


def test_small_crops_are_upscaled(clips, embeddings):
    small = clips["s1/bgbn8n"][::15, ::2, ::2]  # 128 x 128
    emb = identity_embeddings(small, GRID_FACE_BOX)
    assert emb.shape == (5, 128)
    # still the same person as the full-size crops
    assert acd_from_embeddings(embeddings["s1/bgbn8n"], emb)["acd_e"] < 0.6


def test_tight_crop_with_whole_frame_box(clips):
    # a tight crop (the face box itself) needs no face_box
    left, top, right, bottom = (round(v * 256) for v in GRID_FACE_BOX)
    tight_a = clips["s1/bgbn8n"][::25, top:bottom, left:right]
    tight_b = clips["s2/swwp2s"][::25, top:bottom, left:right]
    tight_same = clips["s1/lgbm3s"][::25, top:bottom, left:right]
    assert acd(tight_a, tight_same)["acd_e"] < 0.6 < acd(tight_a, tight_b)["acd_e"]


def test_acd_rejects_mismatched_inputs(clips):
    video = clips["s1/bgbn8n"]
    with pytest.raises(ValueError):
        acd(video[:3], video[:2])
    with pytest.raises(ValueError):
        identity_embeddings(video[:2], face_box=(0.5, 0.0, 0.2, 1.0))


# --------------------------------------------------------------------------- WER


def _grid_sentence(clip: str) -> str:
    lines = (GRID / "alignments" / f"{clip}.align").read_text().splitlines()
    return " ".join(w for w in (ln.split()[-1] for ln in lines if ln.strip()) if w not in ("sil", "sp"))


def test_wer_one_substitution_in_six_words():
    assert word_error_rate(["bin blue at f two now"], ["bin blue at f three now"]) == pytest.approx(1 / 6)


def test_wer_on_grid_transcript_is_normalised():
    sentence = _grid_sentence("s1/bgbn8n")
    assert len(sentence.split()) == 6
    assert word_error_rate([sentence], ["  " + sentence.upper().replace(" ", "   ") + " "]) == 0.0


def test_wer_is_corpus_level_and_unbounded():
    # 1 deletion in 3 words + 4 substitutions and 1 insertion in 4 words: 6 / 7 (not (1/3 + 5/4) / 2)
    assert word_error_rate(["a b c", "d e f g"], ["a b", "x y z w v"]) == pytest.approx(6 / 7)
    assert word_error_rate(["a"], ["a b c"]) == pytest.approx(2.0)
    assert word_error_rate(["a b"], [""]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        word_error_rate(["a"], ["a", "b"])
    with pytest.raises(ValueError):
        word_error_rate([" "], ["a"])
