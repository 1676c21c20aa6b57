"""Head pose (yaw, pitch, roll) from 68 iBUG landmarks by perspective-n-point.

A rigid 3-D mean-face model is fitted to the corresponding 2-D landmarks with ``cv2.solvePnP``
under a pinhole camera whose focal length is the image width in pixels and whose principal point
is the image centre, without lens distortion (the set-up of Mallick, "Head Pose Estimation using
OpenCV and Dlib", LearnOpenCV 2016).

Model. LearnOpenCV's widely used six-point model (nose tip, chin, outer eye corners, mouth
corners) puts the outer eye corners only 0.30 biocular widths behind the nose tip, where adult
faces have roughly 0.45-0.5 (about 40-45 mm behind the tip for a biocular width near 90 mm; rough
anthropometric values, cf. Farkas, "Anthropometry of the Head and Face", 1994). On GRID's s1
speaker that model reports a median yaw of 22 degrees for a face that the asymmetry of its nose
and jaw contour puts at about 10 degrees, and its chin point drops with the jaw in speech and
shakes the pitch. The model used here therefore keeps only landmarks that stay rigid while
talking - nose-bridge top, nose tip, nostrils, subnasale, inner and outer eye corners, mouth
corners - with approximate adult proportions in millimetres (biocular width 90, intercanthal 32,
mouth 52; depths behind the nose tip 43 for the outer and 33 for the inner eye corners, 33 for
the mouth corners). The values are rounded approximations, not a fitted mean shape: absolute
angles carry a few degrees of model bias (per-clip medians on the 18 GRID clips of
resources/grid_sample: |yaw| 3-13, pitch +4 to +12, |roll| < 3 degrees), while changes between frames and the signs of the angles are reliable.

Axes and signs. The model is stated in the camera's axes (x to the image's right, y down, z away
from the camera; nose tip at the origin, the rest of the face behind it), so that a face looking
straight into the camera has rotation identity and the pose is solved on the physical branch (no
pitch-near-180 flips). The rotation ``R`` (model -> camera) is decomposed as
``R = Rz(roll) @ Ry(-yaw) @ Rx(-pitch)``:

* ``yaw`` positive: the head turns to the subject's **left** (the nose moves to the image's right);
* ``pitch`` positive: the head tilts **up** (chin up; the nose moves up in the image);
* ``roll`` positive: the face turns **clockwise** in the image, i.e. the head leans towards the
  subject's left shoulder.

All angles are in degrees in ``(-180, 180]``; a frontal face gives values near 0. Mirroring the
image horizontally flips the signs of yaw and roll and keeps pitch.
"""

from __future__ import annotations

import numpy as np

from a2v.errors import A2VError

# iBUG index (0-based) -> model point, millimetres, camera axes (x image-right, y down, z away).
# "Image-left" points (36, 39, 48, 31) belong to the subject's right side.
_MODEL = {
    30: (0.0, 0.0, 0.0),  # nose tip (pronasale)
    27: (0.0, -38.0, 22.0),  # top of the nose bridge (sellion)
    31: (-12.0, 9.0, 19.0),  # nostril, image-left
    33: (0.0, 13.0, 17.0),  # subnasale
    35: (12.0, 9.0, 19.0),  # nostril, image-right
    36: (-45.0, -33.0, 43.0),  # outer corner of the image-left eye (exocanthion)
    39: (-16.0, -33.0, 33.0),  # inner corner of the image-left eye (endocanthion)
    42: (16.0, -33.0, 33.0),  # inner corner of the image-right eye
    45: (45.0, -33.0, 43.0),  # outer corner of the image-right eye
    48: (-26.0, 31.0, 33.0),  # mouth corner, image-left (cheilion)
    54: (26.0, 31.0, 33.0),  # mouth corner, image-right
}
POSE_LANDMARKS: tuple[int, ...] = tuple(_MODEL)
MODEL_POINTS = np.array([_MODEL[k] for k in POSE_LANDMARKS], dtype=np.float64)
_EYE_OUTER = (POSE_LANDMARKS.index(36), POSE_LANDMARKS.index(45))
_NOSE_TIP = POSE_LANDMARKS.index(30)


def camera_matrix(image_size: tuple[int, int]) -> np.ndarray:
    """Pinhole intrinsics: focal length = image width, principal point = image centre.

    Args:
        image_size: ``(H, W)`` in pixels.

    Returns:
        ``(3, 3)`` float64 camera matrix.
    """
    h, w = (float(v) for v in image_size)
    return np.array([[w, 0.0, (w - 1) / 2], [0.0, w, (h - 1) / 2], [0.0, 0.0, 1.0]], np.float64)


def rotation_to_euler(rotation: np.ndarray) -> np.ndarray:
    """Yaw, pitch, roll in degrees (module convention) of a model->camera rotation matrix.

    Args:
        rotation: ``(3, 3)`` rotation matrix ``R = Rz(roll) @ Ry(-yaw) @ Rx(-pitch)``.

    Returns:
        ``(3,)`` float64 ``(yaw, pitch, roll)`` in degrees.
    """
    r = np.asarray(rotation, np.float64)
    a = np.arctan2(r[2, 1], r[2, 2])  # about x
    b = np.arctan2(-r[2, 0], np.hypot(r[2, 1], r[2, 2]))  # about y
    c = np.arctan2(r[1, 0], r[0, 0])  # about z
    return np.degrees([-b, -a, c])


def euler_to_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Inverse of :func:`rotation_to_euler`: ``(3, 3)`` rotation for angles in degrees."""
    a, b, c = np.radians([-pitch, -yaw, roll])
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


def head_pose(landmarks: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Head pose of every frame by ``cv2.solvePnP`` against the rigid 3-D face model.

    The pose is solved with ``SOLVEPNP_ITERATIVE`` (Levenberg-Marquardt) started from the
    frontal pose at the distance that matches the face's size, which keeps the solution on the
    physical branch (face in front of the camera, facing it) rather than a mirrored
    pitch ~ +-180 degrees one.

    Args:
        landmarks: ``(T, 68, 2)`` pixel coordinates ``(x, y)`` (iBUG order) or ``(68, 2)``; only
            the model's landmarks (``POSE_LANDMARKS``) are used.
        image_size: ``(H, W)`` of the frames the landmarks were measured in, pixels.

    Returns:
        ``(T, 3)`` float32 ``(yaw, pitch, roll)`` in degrees (``(3,)`` for ``(68, 2)`` input; see
        the module docstring for signs); a row is NaN where any of the model's landmarks is NaN or PnP fails.

    Raises:
        A2VError: ``landmarks`` is not ``(T, 68, 2)`` / ``(68, 2)``.
    """
    import cv2

    pts = np.asarray(landmarks, np.float64)
    single = pts.ndim == 2
    if single:
        pts = pts[None]
    if pts.ndim != 3 or pts.shape[1:] != (68, 2):
        raise A2VError(f"landmarks must be (T, 68, 2), got {np.shape(landmarks)}")
    cam = camera_matrix(image_size)
    dist = np.zeros(4)
    i36, i45 = _EYE_OUTER
    model_width = MODEL_POINTS[i45, 0] - MODEL_POINTS[i36, 0]
    out = np.full((len(pts), 3), np.nan, np.float32)
    for t, frame_pts in enumerate(pts):
        image_pts = frame_pts[list(POSE_LANDMARKS)]
        if not np.isfinite(image_pts).all():
            continue
        # Frontal initial guess: depth from the eye-corner distance, translation through the nose.
        eye_px = max(float(np.linalg.norm(image_pts[i45] - image_pts[i36])), 1.0)
        z = cam[0, 0] * model_width / eye_px
        nose = image_pts[_NOSE_TIP]
        tvec = np.array([(nose[0] - cam[0, 2]) * z / cam[0, 0], (nose[1] - cam[1, 2]) * z / cam[1, 1], z])
        rvec = np.zeros(3)
        ok, rvec, tvec = cv2.solvePnP(
            MODEL_POINTS, image_pts, cam, dist, rvec.reshape(3, 1), tvec.reshape(3, 1),
            useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE,
        )
        if not ok or tvec[2, 0] <= 0:
            continue
        out[t] = rotation_to_euler(cv2.Rodrigues(rvec)[0])
    return out[0] if single else out


def within_limits(pose: np.ndarray, limits: dict[str, float]) -> np.ndarray:
    """Frames whose absolute yaw, pitch and roll are all within the limits.

    Args:
        pose: ``(T, 3)`` degrees ``(yaw, pitch, roll)`` as from :func:`head_pose`.
        limits: ``{"yaw": max_abs_deg, "pitch": max_abs_deg, "roll": max_abs_deg}``; a missing key
            means no limit on that angle.

    Returns:
        ``(T,)`` bool; False where the pose is NaN.

    Raises:
        A2VError: unknown key in ``limits`` or ``pose`` not ``(T, 3)``.
    """
    pose = np.asarray(pose, np.float64)
    if pose.ndim != 2 or pose.shape[1] != 3:
        raise A2VError(f"pose must be (T, 3), got {pose.shape}")
    unknown = set(limits) - {"yaw", "pitch", "roll"}
    if unknown:
        raise A2VError(f"unknown pose limit(s) {sorted(unknown)}; use yaw, pitch, roll")
    bound = np.array([limits.get(k, np.inf) for k in ("yaw", "pitch", "roll")], np.float64)
    with np.errstate(invalid="ignore"):
        return np.all(np.abs(pose) <= bound, axis=1) & np.isfinite(pose).all(axis=1)


def longest_run(mask: np.ndarray) -> tuple[int, int]:
    """Half-open ``(start, stop)`` of the longest run of True in a 1-D mask.

    The first run wins ties; ``(0, 0)`` when the mask has no True.

    Args:
        mask: ``(T,)`` bool.
    """
    m = np.asarray(mask, bool).ravel().astype(np.int8)
    if not m.any():
        return 0, 0
    edges = np.diff(np.concatenate([[0], m, [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    i = int(np.argmax(stops - starts))
    return int(starts[i]), int(stops[i])
