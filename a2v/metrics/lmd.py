"""LMD: mouth Landmark Distance between generated and real frames (↓, pixels).

Chen, Li, Maddox, Duan & Xu, "Lip Movements Generation at a Glance", ECCV 2018; as used by
MAN (supplementary material, Eq. 7). Landmarks are the iBUG 68-point scheme (dlib's
``shape_predictor_68_face_landmarks``); the mouth is points 49-68 (1-based), i.e. ``MOUTH``.
"""

from __future__ import annotations

import numpy as np

MOUTH = slice(48, 68)  # iBUG points 49-68 (1-based): outer lip 49-60, inner lip 61-68


def lmd(
    real_landmarks: np.ndarray,
    fake_landmarks: np.ndarray,
    frame_size: int,
    reference_size: int = 256,
) -> float:
    """Mean Euclidean distance of the 20 mouth landmarks, in pixels of a reference-size frame (↓).

    ``LMD = 1 / (T' * 20) * sum_t sum_{p in MOUTH} || s * (real[t, p] - fake[t, p]) ||_2`` with
    ``s = reference_size / frame_size``: both landmark sets are in pixels of square
    ``frame_size`` x ``frame_size`` frames and are rescaled to a ``reference_size`` frame, so
    that values are comparable across resolutions. ``T'`` counts the frames kept: a frame is
    skipped when any mouth coordinate is NaN on either side (no face found).

    Args:
        real_landmarks, fake_landmarks: ``(T, 68, 2)`` float ``(x, y)`` pixel coordinates,
            same ``T``.
        frame_size: side in pixels of the (square) frames the landmarks were measured on.
        reference_size: side in pixels of the frame the distance is expressed in.

    Returns:
        The distance, or NaN when every frame is skipped.

    Raises:
        ValueError: shapes differ or are not ``(T, 68, 2)``, or a size is not positive.
    """
    real = np.asarray(real_landmarks, dtype=np.float64)
    fake = np.asarray(fake_landmarks, dtype=np.float64)
    if real.shape != fake.shape or real.ndim != 3 or real.shape[1:] != (68, 2):
        raise ValueError(f"landmarks must both be (T, 68, 2), got {real.shape} and {fake.shape}")
    if frame_size <= 0 or reference_size <= 0:
        raise ValueError(f"frame_size and reference_size must be positive, got {frame_size}, {reference_size}")
    real_mouth, fake_mouth = real[:, MOUTH], fake[:, MOUTH]
    valid = ~(np.isnan(real_mouth).any(axis=(1, 2)) | np.isnan(fake_mouth).any(axis=(1, 2)))
    if not valid.any():
        return float("nan")
    scale = reference_size / frame_size
    dist = np.linalg.norm(scale * (real_mouth[valid] - fake_mouth[valid]), axis=-1)
    return float(dist.mean())
