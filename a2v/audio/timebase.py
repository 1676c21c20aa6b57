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


def frame_centres_s(n_frames: int, fps: float, first_frame: int = 0) -> np.ndarray:
    """Centre time of video frames ``t = first_frame … first_frame + n_frames - 1`` in seconds:
    ``(t + 0.5) / fps``, shape ``(n_frames,)`` float64."""
    return (np.arange(first_frame, first_frame + n_frames, dtype=np.float64) + 0.5) / fps


def frame_windows(audio: np.ndarray, sample_rate: int, fps: float, n_frames: int, window_s: float,
                  first_frame: int = 0) -> np.ndarray:
    """Audio windows of ``window_s`` seconds centred on each video frame.

    Args:
        audio: ``(N,)`` float32 mono waveform (the whole clip).
        sample_rate: Hz.
        fps: video frame rate.
        n_frames: number of windows (audio shorter than the last frame's window is zero-padded).
        window_s: window length in seconds (0.2 for the 200 ms MFCC window of OneShotA2V).
        first_frame: the video frame of the first window (0-based): a chunk of a clip's frames
            gets the very windows the whole clip's computation has for those frames.

    Returns:
        ``(n_frames, W)`` float32 windows, ``W = round(window_s * sample_rate)``; window ``i``
        (frame ``t = first_frame + i``) starts at sample ``round((t + 0.5) * sr / fps) - W // 2``
        of the unpadded signal; samples outside ``[0, N)`` are 0.
    """
    width = int(round(window_s * sample_rate))
    if n_frames < 1:
        return np.zeros((0, width), np.float32)
    starts = np.round(frame_centres_s(n_frames, fps, first_frame) * sample_rate).astype(np.int64) - width // 2
    lo = int(starts[0])
    segment = audio_segment(audio, lo, int(starts[-1]) + width)
    idx = (starts - lo)[:, None] + np.arange(width)[None, :]
    return segment[idx]


def audio_segment(audio: np.ndarray, start: int, stop: int) -> np.ndarray:
    """``audio[start:stop]`` as float32, with zeros for the samples outside ``[0, N)`` (``start`` may
    be negative and ``stop`` past the end): ``(stop - start,)``, a copy."""
    audio = np.asarray(audio)
    out = np.zeros(max(0, stop - start), np.float32)
    a, b = max(start, 0), min(stop, len(audio))
    if b > a:
        out[a - start:b - start] = audio[a:b]
    return out


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
