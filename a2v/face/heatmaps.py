"""The 15 facial keypoints of the Kaggle "Facial Keypoints Detection" set, and their heatmaps.

MAN (§3.0.1) conditions on 15 keypoint heatmaps of 96x96 pixels with values in [0, 1]; the 15
points are those of the Kaggle facial-keypoints data set (96x96 faces), where "left" and "right"
refer to the **subject's** point of view (the subject's left eye appears on the image's right).
Here they are derived from the 68 iBUG 300-W landmarks (0-based indices):

===========================  =================================
keypoint (Kaggle CSV order)  iBUG source
===========================  =================================
left_eye_center              mean of 42-47 (subject's left eye)
right_eye_center             mean of 36-41
left_eye_inner_corner        42
left_eye_outer_corner        45
right_eye_inner_corner       39
right_eye_outer_corner       36
left_eyebrow_inner_end       22
left_eyebrow_outer_end       26
right_eyebrow_inner_end      21
right_eyebrow_outer_end      17
nose_tip                     30
mouth_left_corner            54
mouth_right_corner           48
mouth_center_top_lip         51 (top of the upper lip, outer contour)
mouth_center_bottom_lip      57 (bottom of the lower lip, outer contour)
===========================  =================================
"""

from __future__ import annotations

import numpy as np

from a2v.errors import A2VError

KEYPOINT_NAMES: tuple[str, ...] = (
    "left_eye_center",
    "right_eye_center",
    "left_eye_inner_corner",
    "left_eye_outer_corner",
    "right_eye_inner_corner",
    "right_eye_outer_corner",
    "left_eyebrow_inner_end",
    "left_eyebrow_outer_end",
    "right_eyebrow_inner_end",
    "right_eyebrow_outer_end",
    "nose_tip",
    "mouth_left_corner",
    "mouth_right_corner",
    "mouth_center_top_lip",
    "mouth_center_bottom_lip",
)

# iBUG source of each keypoint: a single index, or a range whose mean is taken.
KEYPOINT_SOURCES: tuple[int | range, ...] = (
    range(42, 48), range(36, 42), 42, 45, 39, 36, 22, 26, 21, 17, 30, 54, 48, 51, 57,
)


def keypoints15(landmarks: np.ndarray) -> np.ndarray:
    """The 15 Kaggle keypoints (order of :data:`KEYPOINT_NAMES`) from 68 iBUG landmarks.

    Args:
        landmarks: ``(..., 68, 2)`` pixels (x, y).

    Returns:
        ``(..., 15, 2)`` float32 in the same pixel frame; NaN propagates.

    Raises:
        A2VError: the last two axes are not ``(68, 2)``.
    """
    pts = np.asarray(landmarks, np.float64)
    if pts.ndim < 2 or pts.shape[-2:] != (68, 2):
        raise A2VError(f"landmarks must be (..., 68, 2), got {pts.shape}")
    cols = [pts[..., list(src), :].mean(-2) if isinstance(src, range) else pts[..., src, :] for src in KEYPOINT_SOURCES]
    return np.stack(cols, axis=-2).astype(np.float32)


def keypoint_heatmaps(keypoints: np.ndarray, crop_size: int, out_size: int = 96, sigma: float = 2.0) -> np.ndarray:
    """Gaussian heatmaps of keypoints, one map per keypoint (MAN §3.0.1: 15 maps of 96x96 in [0, 1]).

    A keypoint at crop pixel ``x`` lands at heatmap coordinate ``(x + 0.5) * out / crop - 0.5``
    (pixel centres aligned, the convention of ``cv2.resize``); the map is
    ``exp(-((u - x_h)^2 + (v - y_h)^2) / (2 sigma^2))`` over heatmap pixels ``(u, v)``, so its value
    is 1.0 exactly at the keypoint and in ``[0, 1]`` everywhere.

    Args:
        keypoints: ``(T, K, 2)`` crop pixels (x, y) (K = 15 for :func:`keypoints15`).
        crop_size: side of the square crop the keypoints refer to, pixels.
        out_size: side of each heatmap, pixels.
        sigma: Gaussian standard deviation in heatmap pixels.

    Returns:
        ``(T, K, out_size, out_size)`` float32 in [0, 1]; all-zero maps for NaN keypoints.

    Raises:
        A2VError: bad shape, non-positive size or sigma.
    """
    kp = np.asarray(keypoints, np.float64)
    if kp.ndim != 3 or kp.shape[-1] != 2:
        raise A2VError(f"keypoints must be (T, K, 2), got {kp.shape}")
    if int(crop_size) <= 0 or int(out_size) <= 0 or not sigma > 0:
        raise A2VError(f"crop_size, out_size and sigma must be positive, got {crop_size}, {out_size}, {sigma}")
    scaled = (kp + 0.5) * (float(out_size) / float(crop_size)) - 0.5  # (T, K, 2)
    grid = np.arange(out_size, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        g = np.exp(-((grid - scaled[..., None]) ** 2) / (2.0 * sigma**2))  # (T, K, 2, out): x then y
    g = np.nan_to_num(g, nan=0.0).astype(np.float32)
    g[~np.isfinite(kp).all(-1)] = 0.0
    # Separable Gaussian: map[v, u] = gy[v] * gx[u].
    return g[:, :, 1, :, None] * g[:, :, 0, None, :]
