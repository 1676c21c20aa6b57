"""Is there speech in the user's audio? Voice activity detection with Silero VAD.

``a2v generate`` refuses audio without speech (issue 17): a silent track is caught by
:func:`a2v.io.audio.load_audio`'s RMS floor, but room noise, music or hum pass an RMS check. Silero
VAD (Silero Team 2021, v6; the ONNX model that the pinned ``faster-whisper`` package ships in its
``assets``, run by ``onnxruntime``, nothing downloaded) gives a speech probability per 32-ms window
of 16 kHz audio; :func:`speech_segments` returns the segments it calls speech, through
faster-whisper's ``get_speech_timestamps`` (threshold 0.5, segments shorter than
``min_speech_s`` dropped, no padding).

a2v: 0.25 s of speech in total is the least :func:`check_speech` accepts (one GRID word lasts
about 0.3 s). Measured on the 16 GRID s1 clips of ``resources/grid_sample``: the speech found
covers 76–97 % of the span from the first word's start to the last word's end in the alignment
(it starts 0.04–0.52 s late, latest on soft onsets such as "lay", and runs on into the trailing
silence to the clip's end); none is found in the room noise before the first word (RMS −34 dBFS,
which the RMS floor lets through).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from a2v.errors import MediaError

VAD_RATE_HZ = 16000
"""Silero VAD's sample rate."""
MIN_SPEECH_S = 0.25
"""Least speech, in seconds, that counts (per segment and in total)."""


def speech_segments(wave: np.ndarray, sample_rate: int, min_speech_s: float = MIN_SPEECH_S,
                    threshold: float = 0.5) -> list[tuple[float, float]]:
    """Speech segments of a mono waveform, by Silero VAD v6.

    Args:
        wave: ``(N,)`` float32 mono in [-1, 1]; resampled to 16 kHz (librosa) when ``sample_rate`` differs.
        sample_rate: Hz.
        min_speech_s: shorter segments are dropped (seconds).
        threshold: speech probability above which a 32-ms window is speech (Silero's default 0.5).

    Returns:
        ``[(start, end), …]`` in seconds, in order.

    Raises:
        ValueError: ``wave`` not 1-D.
        RuntimeError: onnxruntime missing (faster-whisper's message).
    """
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    wave = np.asarray(wave, np.float32)
    if wave.ndim != 1:
        raise ValueError(f"wave must be (N,) mono, got shape {wave.shape}")
    if int(sample_rate) != VAD_RATE_HZ:
        import librosa

        wave = librosa.resample(wave, orig_sr=int(sample_rate), target_sr=VAD_RATE_HZ)
    options = VadOptions(threshold=threshold, min_speech_duration_ms=int(round(1000 * min_speech_s)), speech_pad_ms=0)
    return [(s["start"] / VAD_RATE_HZ, s["end"] / VAD_RATE_HZ) for s in get_speech_timestamps(wave, options)]


def check_speech(wave: np.ndarray, sample_rate: int, path: str | Path, min_speech_s: float = MIN_SPEECH_S) -> float:
    """Seconds of speech in ``wave`` (the audio of file ``path``).

    Raises:
        MediaError: less than ``min_speech_s`` seconds of speech, naming ``path``, the audio's
            length and level.
    """
    segments = speech_segments(wave, sample_rate, min_speech_s)
    total = sum(e - s for s, e in segments)
    if total < min_speech_s:
        level = 20 * np.log10(max(float(np.sqrt(np.mean(np.square(wave, dtype=np.float64)))), 1e-12))
        raise MediaError(path, f"no speech detected in {len(wave) / sample_rate:.2f} s of audio (Silero VAD: "
                               f"{total:.2f} s of speech, at least {min_speech_s:.2f} s needed; RMS {level:.1f} dBFS)")
    return total


__all__ = ["MIN_SPEECH_S", "VAD_RATE_HZ", "check_speech", "speech_segments"]
