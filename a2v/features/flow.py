"""Farnebäck dense optical flow between consecutive aligned face crops (OpenCV).

MAN §4.1: "The ground truth of optical flow is calculated using farneback optical flow
algorithm". ``flow[t]`` maps frame ``t - 1`` to frame ``t`` (``flow[0] = 0``), in pixels of the
crop, channel 0 = x (right), channel 1 = y (down).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class FarnebackConfig:
    """Parameters of ``cv2.calcOpticalFlowFarneback`` (OpenCV's names and defaults of common use)."""

    pyr_scale: float = 0.5
    levels: int = 3
    winsize: int = 15
    iterations: int = 3
    poly_n: int = 5
    poly_sigma: float = 1.2


def farneback_flow(frames: np.ndarray, cfg: FarnebackConfig = FarnebackConfig()) -> np.ndarray:
    """Dense flow from each frame to the next.

    Args:
        frames: ``(T, H, W, 3)`` uint8 RGB crops.
        cfg: Farnebäck parameters.

    Returns:
        ``(T, 2, H, W)`` float16 flow in pixels; ``flow[t]`` goes from frame ``t-1`` to ``t``,
        ``flow[0]`` is zero.

    Raises:
        ValueError: frames not ``(T, H, W, 3)`` uint8.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    t, h, w, _ = frames.shape
    out = np.zeros((t, 2, h, w), np.float16)
    prev = cv2.cvtColor(frames[0], cv2.COLOR_RGB2GRAY)
    for i in range(1, t):
        cur = cv2.cvtColor(frames[i], cv2.COLOR_RGB2GRAY)
        flow = cv2.calcOpticalFlowFarneback(
            prev, cur, None, cfg.pyr_scale, cfg.levels, cfg.winsize, cfg.iterations, cfg.poly_n, cfg.poly_sigma, 0
        )
        out[i] = flow.transpose(2, 0, 1)
        prev = cur
    return out
