"""The mouth region of aligned face crops — input of the lip-reader (LipNet) and of SyncNet.

Aligned crops (:mod:`a2v.face.align`) put the mouth centre at the template point
``(0.500, 0.710)`` of the crop side, so the mouth region is a fixed box: centred there,
``MOUTH_BOX_WIDTH`` of the side wide and half as high (LipNet's 100 × 50 aspect, Assael et al.
2016 §4.1). No landmark detection is needed, and real and generated crops are cut identically.
"""

from __future__ import annotations

import cv2
import numpy as np

from a2v.face.align import TEMPLATE

MOUTH_BOX_WIDTH = 0.48
"""Width of the mouth box as a fraction of the crop side (GRID mouths span ≈ 0.3 of it)."""


def mouth_box(crop_size: int) -> tuple[float, float, float, float]:
    """``(left, top, right, bottom)`` of the mouth box in pixels of an aligned crop of side ``crop_size``."""
    cx, cy = TEMPLATE[2] * crop_size
    half_w = MOUTH_BOX_WIDTH * crop_size / 2
    half_h = half_w / 2
    return (cx - half_w, cy - half_h, cx + half_w, cy + half_h)


def mouth_crops(frames: np.ndarray, width: int = 100, height: int = 50) -> np.ndarray:
    """Cut and resize the mouth box of every aligned crop.

    Args:
        frames: ``(T, S, S, 3)`` uint8 aligned crops (any S).
        width, height: output size in pixels.

    Returns:
        ``(T, height, width, 3)`` uint8.

    Raises:
        ValueError: frames not ``(T, S, S, 3)``.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[1] != frames.shape[2] or frames.shape[3] != 3:
        raise ValueError(f"expected aligned crops (T, S, S, 3), got {frames.shape}")
    size = frames.shape[1]
    left, top, right, bottom = (int(round(v)) for v in mouth_box(size))
    left, top, right, bottom = max(left, 0), max(top, 0), min(right, size), min(bottom, size)
    interp = cv2.INTER_AREA if right - left > width else cv2.INTER_LINEAR
    return np.stack([cv2.resize(f[top:bottom, left:right], (width, height), interpolation=interp) for f in frames])
