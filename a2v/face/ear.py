"""Eye aspect ratio (EAR) from 68 iBUG landmarks.

Soukupova & Cech, "Real-Time Eye Blink Detection using Facial Landmarks", CVWW 2016, eq. (1):

    EAR = (|p2 - p6| + |p3 - p5|) / (2 |p1 - p4|)

with ``p1 ... p6`` the six landmarks of one eye, from the corner on the image's left clockwise
(in the image): ``p1`` left corner, ``p2, p3`` upper lid, ``p4`` right corner, ``p5, p6`` lower
lid. An open eye gives about 0.25-0.35; a closed eye drops towards 0.
"""

from __future__ import annotations

import numpy as np

from a2v.errors import A2VError

# (p1, p2, p3, p4, p5, p6) in 0-based iBUG indices.
EYE_INDICES = ((36, 37, 38, 39, 40, 41), (42, 43, 44, 45, 46, 47))
"""Index 0: the eye on the image's left (the subject's right eye), iBUG 36-41.
Index 1: the eye on the image's right (the subject's left eye), iBUG 42-47."""


def eye_aspect_ratio(landmarks: np.ndarray) -> np.ndarray:
    """EAR of both eyes.

    Args:
        landmarks: ``(..., 68, 2)`` pixels (x, y), iBUG order.

    Returns:
        ``(..., 2)`` float32, unit-less: ``[..., 0]`` the image-left eye (subject's right eye,
        iBUG 36-41), ``[..., 1]`` the image-right eye (subject's left eye, iBUG 42-47).
        NaN where a landmark is NaN or the eye's corners coincide.

    Raises:
        A2VError: the last two axes are not ``(68, 2)``.
    """
    pts = np.asarray(landmarks, np.float64)
    if pts.ndim < 2 or pts.shape[-2:] != (68, 2):
        raise A2VError(f"landmarks must be (..., 68, 2), got {pts.shape}")
    eyes = pts[..., np.array(EYE_INDICES), :]  # (..., 2, 6, 2)
    p1, p2, p3, p4, p5, p6 = (eyes[..., i, :] for i in range(6))
    dist = lambda a, b: np.linalg.norm(a - b, axis=-1)  # noqa: E731
    with np.errstate(invalid="ignore", divide="ignore"):
        ear = (dist(p2, p6) + dist(p3, p5)) / (2.0 * dist(p1, p4))
    ear[~np.isfinite(ear)] = np.nan
    return ear.astype(np.float32)
