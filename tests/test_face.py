"""Tests of a2v.face on real GRID clips from resources/grid_sample."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

from a2v.errors import A2VError, NoFaceError
from a2v.face import align, ear, heatmaps, landmarks, pose
from a2v.io.video import read_frames

GRID = Path(__file__).resolve().parents[1] / "resources" / "grid_sample"
S1_CLIP = GRID / "s1" / "bgbn8n.mpg"
S31_CLIP = GRID / "s31" / "bgiq6p.mpg"
S2_CLIP = GRID / "s2" / "swwp2s.mpg"


@pytest.fixture(scope="module")
def s1_frames() -> np.ndarray:
    return read_frames(S1_CLIP)


@pytest.fixture(scope="module")
def s1_detected(s1_frames):
    """Landmarks of the s1 clip with detection on every frame."""
    return landmarks.DlibBackend(detect_every=1)(s1_frames)


@pytest.fixture(scope="module")
def s1_tracked(s1_frames):
    """Landmarks of the s1 clip with detection every 5 frames and tracking in between."""
    return landmarks.DlibBackend(detect_every=5)(s1_frames)


@pytest.fixture(scope="module")
def other_speakers():
    """First frames and their landmarks of the s31 and s2 clips."""
    out = {}
    for clip in (S31_CLIP, S2_CLIP):
        frames = read_frames(clip)[:10]
        out[clip.parent.name] = (frames, *landmarks.DlibBackend()(frames))
    return out


# --------------------------------------------------------------------------- landmarks


def test_landmarks_found_on_every_frame_with_plausible_geometry(s1_frames, s1_tracked):
    lms, conf = s1_tracked
    t, h, w, _ = s1_frames.shape
    assert lms.shape == (t, 68, 2) and lms.dtype == np.float32
    assert conf.shape == (t,) and conf.dtype == np.float32
    assert np.isfinite(lms).all()
    assert (conf > 0.5).all() and (conf <= 1.0).all()
    assert (lms[..., 0] >= 0).all() and (lms[..., 0] < w).all()
    assert (lms[..., 1] >= 0).all() and (lms[..., 1] < h).all()
    eye_left, eye_right = lms[:, 36:42].mean(1), lms[:, 42:48].mean(1)
    nose_tip, mouth = lms[:, 30], lms[:, 48:68].mean(1)
    eyes_y = np.maximum(eye_left[:, 1], eye_right[:, 1])
    assert (eyes_y < nose_tip[:, 1]).all()
    assert (nose_tip[:, 1] < mouth[:, 1]).all()
    assert (mouth[:, 1] < lms[:, 8, 1]).all()  # chin lowest
    assert (eye_left[:, 0] < nose_tip[:, 0]).all() and (nose_tip[:, 0] < eye_right[:, 0]).all()
    iod = np.linalg.norm(eye_right - eye_left, axis=1)
    assert (iod > 30).all() and (iod < 80).all()  # GRID faces: ~45 px between eye centres


def test_landmarks_other_speakers(other_speakers):
    for name, (_frames, lms, conf) in other_speakers.items():
        assert np.isfinite(lms).all(), name
        assert (conf > 0.5).all(), name
        assert (lms[:, 36:48, 1].mean(1) < lms[:, 30, 1]).all(), name


def test_tracking_close_to_per_frame_detection(s1_detected, s1_tracked):
    det, _ = s1_detected
    trk, conf = s1_tracked
    diff = np.linalg.norm(det - trk, axis=-1)  # (T, 68) pixels
    assert diff[::5].max() == 0.0  # detection frames are identical
    assert diff.mean() < 2.0  # measured: 0.39 px
    assert np.median(diff.mean(1)) < 2.0


def test_no_face_in_background_region(s1_frames):
    background = np.ascontiguousarray(s1_frames[:6, 0:200, 230:360])  # blue wall right of the head
    lms, conf = landmarks.DlibBackend()(background)
    assert np.isnan(lms).all()
    assert (conf == 0).all()


def test_blacked_out_frame_breaks_tracking(s1_frames):
    frames = s1_frames[:10].copy()
    frames[7] = 0  # a tracked frame (detection runs on 0 and 5)
    lms, conf = landmarks.DlibBackend(detect_every=5)(frames)
    assert np.isnan(lms[7]).all() and conf[7] == 0
    keep = np.r_[0:7, 8:10]
    assert np.isfinite(lms[keep]).all() and (conf[keep] > 0.5).all()


def test_landmarks_in_box_reproduces_detection(s1_frames, s1_detected):
    lms, _ = s1_detected
    box = landmarks.box_from_landmarks(lms[3])
    again = landmarks.landmarks_in_box(s1_frames[3], box)
    assert again.shape == (68, 2) and again.dtype == np.float32
    assert np.linalg.norm(again - lms[3], axis=-1).mean() < 2.0


def test_make_backend():
    assert isinstance(landmarks.make_backend("dlib", detect_every=3), landmarks.DlibBackend)
    with pytest.raises(A2VError, match="unknown landmark backend"):
        landmarks.make_backend("nope")
    with pytest.raises(A2VError):
        landmarks.DlibBackend(detect_every=0)


def test_face_alignment_backend_missing_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "face_alignment", None)  # import now raises ImportError
    with pytest.raises(A2VError, match="face_alignment package"):
        landmarks.make_backend("face_alignment")


def test_face_alignment_backend_offline_weights(monkeypatch):
    """A face_alignment whose weight download fails (offline) gives a clear A2VError."""
    fake = types.ModuleType("face_alignment")

    class LandmarksType:
        TWO_D = 1

    def face_alignment_ctor(*_args, **_kwargs):
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    fake.LandmarksType = LandmarksType
    fake.FaceAlignment = face_alignment_ctor
    monkeypatch.setitem(sys.modules, "face_alignment", fake)
    with pytest.raises(A2VError, match="downloads them on first use, which fails offline"):
        landmarks.FaceAlignmentBackend(device="cpu")


def test_face_alignment_backend_here():
    """In this (offline, package-less) environment the real backend fails with an A2VError."""
    try:
        landmarks.make_backend("face_alignment")
    except A2VError as exc:
        assert "face_alignment" in str(exc)
    else:  # pragma: no cover - only where face_alignment and its weights are installed
        pytest.skip("face_alignment and its weights are available here")


def test_bad_frames_rejected():
    with pytest.raises(A2VError):
        landmarks.DlibBackend()(np.zeros((2, 10, 10), np.uint8))


# --------------------------------------------------------------------------- pose


def test_pose_frontal_on_s1(s1_frames, s1_tracked):
    p = pose.head_pose(s1_tracked[0], s1_frames.shape[1:3])
    assert p.shape == (len(s1_frames), 3) and p.dtype == np.float32
    assert np.isfinite(p).all()
    med = np.median(np.abs(p), axis=0)
    assert med[0] < 15 and med[1] < 15 and med[2] < 8  # measured: 4.8, 6.0, 0.8
    assert pose.within_limits(p, {"yaw": 30, "pitch": 30, "roll": 20}).all()


def test_pose_mirrored_frame_flips_yaw(s1_frames, s1_detected):
    backend = landmarks.DlibBackend(detect_every=1)
    size = s1_frames.shape[1:3]
    idx = [0, 30, 60]
    mirrored = np.ascontiguousarray(s1_frames[idx, :, ::-1])
    p = pose.head_pose(s1_detected[0][idx], size)
    pm = pose.head_pose(backend(mirrored)[0], size)
    assert (np.abs(p[:, 0]) > 2).all()
    assert (np.sign(pm[:, 0]) == -np.sign(p[:, 0])).all()
    np.testing.assert_allclose(pm[:, 0], -p[:, 0], atol=3.0)
    np.testing.assert_allclose(pm[:, 1], p[:, 1], atol=3.0)  # pitch unchanged


def _project_model(yaw, pitch, roll, size=(288, 360), distance=600.0):
    """68-point array with the pose model points projected at a known pose (others NaN)."""
    cam = pose.camera_matrix(size)
    rvec = cv2.Rodrigues(pose.euler_to_rotation(yaw, pitch, roll))[0]
    img, _ = cv2.projectPoints(pose.MODEL_POINTS, rvec, np.array([10.0, 20.0, distance]), cam, np.zeros(4))
    out = np.full((68, 2), np.nan, np.float32)
    out[list(pose.POSE_LANDMARKS)] = img.reshape(-1, 2)
    return out


def test_pose_known_answer_and_signs():
    angles = [(20.0, -10.0, 5.0), (-30.0, 15.0, -8.0), (0.0, 0.0, 0.0)]
    lms = np.stack([_project_model(*a) for a in angles])
    p = pose.head_pose(lms, (288, 360))
    np.testing.assert_allclose(p, np.array(angles), atol=0.1)
    # Documented signs: positive yaw moves the nose tip to the image's right of the eye midpoint,
    # positive pitch moves it up (towards the eyes).
    nose, eyes = lms[:, 30], 0.5 * (lms[:, 36] + lms[:, 45])
    front = _project_model(0.0, 0.0, 0.0)
    assert nose[0, 0] - eyes[0, 0] > front[30, 0] - 0.5 * (front[36, 0] + front[45, 0])
    assert nose[1, 1] - eyes[1, 1] < front[30, 1] - 0.5 * (front[36, 1] + front[45, 1])
    # Positive roll turns the eye line clockwise in the image (right eye lower).
    assert lms[0, 45, 1] > lms[0, 36, 1]


def test_pose_nan_rows_and_helpers():
    lms = np.stack([_project_model(5.0, 0.0, 0.0), np.full((68, 2), np.nan, np.float32)])
    p = pose.head_pose(lms, (288, 360))
    assert np.isfinite(p[0]).all() and np.isnan(p[1]).all()
    assert pose.head_pose(lms[0], (288, 360)).shape == (3,)
    ok = pose.within_limits(np.array([[5, 0, 0], [40, 0, 0], [np.nan] * 3, [0, -25, 0]]), {"yaw": 30, "pitch": 20})
    assert ok.tolist() == [True, False, False, False]
    with pytest.raises(A2VError):
        pose.within_limits(p, {"tilt": 3})
    assert pose.longest_run(np.array([1, 1, 0, 1, 1, 1, 0, 1], bool)) == (3, 6)
    assert pose.longest_run(np.array([1, 1, 1, 0], bool)) == (0, 3)
    assert pose.longest_run(np.array([0, 1, 1, 1], bool)) == (1, 4)
    assert pose.longest_run(np.zeros(4, bool)) == (0, 0)


# --------------------------------------------------------------------------- alignment


@pytest.fixture(scope="module")
def s1_aligned(s1_frames, s1_tracked):
    return align.align_clip(s1_frames, s1_tracked[0], crop_size=256, smooth_window=5)


def test_aligned_eyes_on_template(s1_aligned):
    crops, lms_crop, matrices = s1_aligned
    assert crops.shape == (75, 256, 256, 3) and crops.dtype == np.uint8
    assert lms_crop.shape == (75, 68, 2) and matrices.shape == (75, 2, 3) and matrices.dtype == np.float32
    err = np.linalg.norm(align.reference_points(lms_crop) - align.template_points(256), axis=-1)  # (T, 3)
    assert err[:, :2].mean(0).max() < 2.0  # eye centres; measured ~1.0 px
    assert err.max() < 4.0
    # Whole face inside the crop (chin, jaw, eyebrows).
    assert (lms_crop >= 0).all() and (lms_crop < 256).all()


def test_crop_landmarks_are_transformed_frame_landmarks(s1_tracked, s1_aligned):
    _, lms_crop, matrices = s1_aligned
    for t in (0, 37, 74):
        expected = cv2.transform(s1_tracked[0][t][None].astype(np.float64), matrices[t].astype(np.float64))[0]
        np.testing.assert_allclose(lms_crop[t], expected, atol=1e-3)


def test_crop_content_matches_crop_landmarks(s1_aligned):
    """Landmarks measured on the crops (template box, no detection) agree with the mapped ones."""
    crops, lms_crop, _ = s1_aligned
    box = align.template_box(256)
    measured = np.stack([landmarks.landmarks_in_box(crops[t], box) for t in range(0, 75, 15)])
    assert np.linalg.norm(measured - lms_crop[::15], axis=-1).mean() < 2.5  # measured ~0.9 px


def test_alignment_smooths_and_fills_missing_frames(s1_frames, s1_tracked):
    lms = s1_tracked[0].copy()
    raw = align.similarity_matrices(lms, 128, smooth_window=1)
    lms[10:13] = np.nan
    filled = align.similarity_matrices(lms, 128, smooth_window=1)
    assert np.isfinite(filled).all()
    np.testing.assert_allclose(filled[10:13], raw[10:13], atol=0.05 * np.abs(raw).max())
    smooth = align.similarity_matrices(s1_tracked[0], 128, smooth_window=5)
    assert np.abs(np.diff(smooth, axis=0)).sum() < np.abs(np.diff(raw, axis=0)).sum()
    with pytest.raises(NoFaceError):
        align.similarity_matrices(np.full((3, 68, 2), np.nan), 128)


def test_align_image_single_photo(s1_frames, s1_detected):
    crop, lms_crop, matrix = align.align_image(s1_frames[20], s1_detected[0][20], crop_size=128)
    assert crop.shape == (128, 128, 3) and lms_crop.shape == (68, 2) and matrix.shape == (2, 3)
    err = np.linalg.norm(align.reference_points(lms_crop) - align.template_points(128), axis=-1)
    assert err[:2].max() < 1.5
    np.testing.assert_array_equal(crop, cv2.warpAffine(s1_frames[20], matrix.astype(np.float64), (128, 128),
                                                       flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))


# --------------------------------------------------------------------------- EAR


def test_eye_aspect_ratio_known_answer():
    lms = np.zeros((68, 2), np.float32)
    # p1..p6: left corner, upper lid (2), right corner, lower lid (2); width 4, lid gaps 2 -> EAR 0.5
    lms[36:42] = [(0, 0), (1, -1), (3, -1), (4, 0), (3, 1), (1, 1)]
    # width 6, lid gaps 1 and 2 -> EAR (1 + 2) / 12 = 0.25
    lms[42:48] = [(10, 0), (12, -0.5), (14, -1), (16, 0), (14, 1), (12, 0.5)]
    np.testing.assert_allclose(ear.eye_aspect_ratio(lms), [0.5, 0.25], rtol=1e-6)
    batch = ear.eye_aspect_ratio(np.stack([lms, np.full((68, 2), np.nan)]))
    assert batch.shape == (2, 2) and batch.dtype == np.float32 and np.isnan(batch[1]).all()


def test_eye_aspect_ratio_open_eyes_on_grid(s1_tracked):
    e = ear.eye_aspect_ratio(s1_tracked[0])
    assert e.shape == (75, 2)
    assert 0.15 < np.median(e) < 0.45


# --------------------------------------------------------------------------- heatmaps


def test_keypoints15_mapping(s1_tracked):
    lms = s1_tracked[0][:3]
    kp = heatmaps.keypoints15(lms)
    assert kp.shape == (3, 15, 2) and len(heatmaps.KEYPOINT_NAMES) == 15
    names = {n: i for i, n in enumerate(heatmaps.KEYPOINT_NAMES)}
    np.testing.assert_allclose(kp[:, names["left_eye_center"]], lms[:, 42:48].mean(1), atol=1e-4)
    np.testing.assert_allclose(kp[:, names["nose_tip"]], lms[:, 30])
    # Subject's left is on the image's right.
    assert (kp[:, names["left_eye_center"], 0] > kp[:, names["right_eye_center"], 0]).all()
    assert (kp[:, names["mouth_left_corner"], 0] > kp[:, names["mouth_right_corner"], 0]).all()
    assert (kp[:, names["mouth_center_top_lip"], 1] < kp[:, names["mouth_center_bottom_lip"], 1]).all()


def test_heatmap_peak_known_answer_and_nan():
    crop, out = 256, 96
    kp = np.full((2, 15, 2), np.nan)
    # Heatmap pixel (u, v) = (30, 61) <- crop pixel (u + 0.5) * crop / out - 0.5.
    kp[0, 0] = [(30 + 0.5) * crop / out - 0.5, (61 + 0.5) * crop / out - 0.5]
    kp[0, 1] = [10.0, 200.0]
    maps = heatmaps.keypoint_heatmaps(kp, crop, out, sigma=2.0)
    assert maps.shape == (2, 15, out, out) and maps.dtype == np.float32
    assert maps[0, 0].max() == 1.0
    assert np.unravel_index(np.argmax(maps[0, 0]), (out, out)) == (61, 30)  # (row = y, col = x)
    assert abs(float(maps[0, 0, 61, 32]) - np.exp(-4 / 8)) < 1e-3  # 2 px away, sigma 2
    v, u = np.unravel_index(np.argmax(maps[0, 1]), (out, out))
    assert abs(u - (10.5 * out / crop - 0.5)) <= 0.5 and abs(v - (200.5 * out / crop - 0.5)) <= 0.5
    assert (maps[0, 2:] == 0).all() and (maps[1] == 0).all()
    assert maps.min() >= 0 and maps.max() <= 1


def test_heatmaps_on_aligned_crop(s1_aligned):
    _, lms_crop, _ = s1_aligned
    maps = heatmaps.keypoint_heatmaps(heatmaps.keypoints15(lms_crop[:4]), 256)
    assert maps.shape == (4, 15, 96, 96)
    assert (maps.reshape(4, 15, -1).max(-1) > 0.7).all()  # every keypoint inside the map
