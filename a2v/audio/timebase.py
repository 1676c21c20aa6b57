"""The one time base every per-frame feature uses.

Video frame ``t`` covers ``[t / fps, (t + 1) / fps)`` seconds; its audio window is centred on
``(t + 0.5) / fps``. The waveform is zero-padded at both ends so that every window, the first
and last included, has its full length; consecutive windows are ``stride = sr / fps`` samples
apart (MAN §4.1: "zero padding is done before and after the audio signal", stride = audio
sampling rate / video frames per second).
"""

from __future__ import annotations

import numpy as np


def n_video_frames(n_samples: int, sample_rate: int, fps: float) -> int:
    """Number of whole video frames an audio signal of ``n_samples`` spans (rounded to nearest).

    Raises:
        ValueError: non-positive rates.
    """
    if sample_rate <= 0 or fps <= 0:
        raise ValueError(f"sample_rate and fps must be positive, got {sample_rate}, {fps}")
    return int(round(n_samples * fps / sample_rate))


def frame_centres_s(n_frames: int, fps: float) -> np.ndarray:
    """Centre time of each video frame in seconds: ``(t + 0.5) / fps``, shape ``(T,)`` float64."""
    return (np.arange(n_frames, dtype=np.float64) + 0.5) / fps


def frame_windows(audio: np.ndarray, sample_rate: int, fps: float, n_frames: int, window_s: float) -> np.ndarray:
    """Audio windows of ``window_s`` seconds centred on each video frame.

    Args:
        audio: ``(N,)`` float32 mono waveform.
        sample_rate: Hz.
        fps: video frame rate.
        n_frames: number of video frames T (audio shorter than ``T / fps`` is zero-padded).
        window_s: window length in seconds (0.2 for the 200 ms MFCC window of OneShotA2V).

    Returns:
        ``(T, W)`` float32 windows, ``W = round(window_s * sample_rate)``; window ``t`` starts at
        sample ``round((t + 0.5) * sr / fps) - W // 2`` of the unpadded signal.
    """
    width = int(round(window_s * sample_rate))
    starts = np.round(frame_centres_s(n_frames, fps) * sample_rate).astype(np.int64) - width // 2
    pad_left = int(max(0, -starts.min())) if n_frames else 0
    pad_right = int(max(0, starts.max() + width - len(audio))) if n_frames else 0
    padded = np.pad(np.asarray(audio, np.float32), (pad_left, pad_right))
    idx = (starts + pad_left)[:, None] + np.arange(width)[None, :]
    return padded[idx]


def resample_to_frames(values: np.ndarray, times_s: np.ndarray, n_frames: int, fps: float) -> np.ndarray:
    """Linearly interpolate a feature track sampled at ``times_s`` to the video frame centres.

    Args:
        values: ``(K,)`` feature values.
        times_s: ``(K,)`` increasing sample times in seconds.
        n_frames: T.
        fps: video frame rate.

    Returns:
        ``(T,)`` float32 values at ``(t + 0.5) / fps`` (held constant beyond the ends).
    """
    return np.interp(frame_centres_s(n_frames, fps), times_s, values).astype(np.float32)
