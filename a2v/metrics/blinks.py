"""Blink detection from the Eye Aspect Ratio (EAR) and blink rate (blinks per second).

Soukupová & Čech, "Real-Time Eye Blink Detection using Facial Landmarks", 21st Computer
Vision Winter Workshop (CVWW), 2016. EAR of one eye from its six iBUG landmarks p1..p6:
``(|p2 - p6| + |p3 - p5|) / (2 |p1 - p4|)`` (``a2v.face.ear.eye_aspect_ratio``); the per-frame EAR
is the mean of both eyes. A blink is a run of consecutive frames whose EAR is below a threshold
(the paper's simple baseline thresholds EAR; 0.2 is the customary value).

The speech-driven GAN of Vougioukas, Petridis & Pantic ("Realistic Speech-Driven Facial
Animation with GANs", IJCV 2020) compares blink statistics of generated videos with real ones.
"""

from __future__ import annotations

import numpy as np


def _per_frame_ear(ear: np.ndarray) -> np.ndarray:
    ear = np.asarray(ear, dtype=np.float64)
    if ear.ndim == 2 and ear.shape[1] == 2:
        # Mean of the two eyes; a frame with either eye NaN stays NaN (not counted as closed).
        return ear.mean(axis=1)
    if ear.ndim != 1:
        raise ValueError(f"ear must be (T,) or (T, 2) (left, right eye), got {ear.shape}")
    return ear


def detect_blinks(ear: np.ndarray, threshold: float = 0.2, min_frames: int = 2) -> list[tuple[int, int]]:
    """Blinks as half-open frame ranges ``[start, stop)`` of closed eyes.

    A frame is *closed* when its EAR is strictly below ``threshold``; NaN frames (no face or
    landmarks) are never closed and so end a run. A blink is a maximal run of consecutive closed
    frames at least ``min_frames`` long.

    Args:
        ear: ``(T,)`` per-frame EAR, already the mean of both eyes, or ``(T, 2)`` per-eye EAR
            that is averaged here.
        threshold: EAR below which the eyes count as closed.
        min_frames: shortest run, in frames, that counts as a blink (``>= 1``).

    Returns:
        ``[(start, stop), ...]`` in increasing order, ``stop - start >= min_frames``.
    """
    if min_frames < 1:
        raise ValueError(f"min_frames must be >= 1, got {min_frames}")
    closed = _per_frame_ear(ear) < threshold  # NaN < x is False
    edges = np.diff(np.concatenate([[0], closed.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(int(a), int(b)) for a, b in zip(starts, stops) if b - a >= min_frames]


def blinks_per_second(ear: np.ndarray, fps: float = 25.0, threshold: float = 0.2, min_frames: int = 2) -> float:
    """Blink rate: ``len(detect_blinks(ear, threshold, min_frames)) / (T / fps)``, in blinks/s.

    The duration is that of the whole clip (``T`` frames at ``fps``), NaN frames included.

    Raises:
        ValueError: empty sequence or non-positive ``fps``.
    """
    per_frame = _per_frame_ear(ear)
    if len(per_frame) == 0:
        raise ValueError("ear is empty")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return len(detect_blinks(per_frame, threshold, min_frames)) * fps / len(per_frame)
