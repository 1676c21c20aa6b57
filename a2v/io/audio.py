"""Audio decoding and writing (ffmpeg-python).

Every waveform inside a2v is mono ``float32`` in [-1, 1] at 16 kHz (MAN §4.1,
OneShotA2V §6.1): any input rate or channel count is resampled and down-mixed by ffmpeg.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import ffmpeg
import numpy as np

from a2v.errors import MediaError
from a2v.io.ffmpeg_bin import ffmpeg_exe

SAMPLE_RATE = 16000
"""a2v's working audio rate in Hz."""


@dataclass(frozen=True)
class AudioInfo:
    """What a file's first audio stream is, before any resampling.

    Attributes:
        sample_rate: Hz.
        channels: channel count (1 mono, 2 stereo, ...).
        codec: ffmpeg's codec name (``mp2``, ``pcm_s16le``, ``aac`` ...).
    """

    sample_rate: int
    channels: int
    codec: str


_AUDIO_STREAM = re.compile(r"Stream #\d+:\d+(?:\[\w+\])?(?:\(\w+\))?: Audio: (\w+)[^,]*, (\d+) Hz, ([^,]+)")
_LAYOUT_CHANNELS = {"mono": 1, "stereo": 2, "2.1": 3, "quad": 4, "5.0": 5, "5.1": 6, "7.1": 8}


def probe_audio(path: str | Path) -> AudioInfo:
    """Sample rate, channels and codec of a file's first audio stream (from ``ffmpeg -i``).

    The ``imageio-ffmpeg`` binary has no ffprobe, so this reads the stream line ffmpeg prints
    for its input, e.g. ``Stream #0:1: Audio: mp2, 44100 Hz, stereo, s16p, 256 kb/s``.

    Raises:
        MediaError: missing file, or no audio stream.
    """
    path = Path(path)
    if not path.is_file():
        raise MediaError(path, "file not found")
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)], capture_output=True, text=True, errors="replace")
    match = _AUDIO_STREAM.search(proc.stderr)
    if match is None:
        raise MediaError(path, "no audio stream")
    layout = match.group(3).strip()
    channels = _LAYOUT_CHANNELS.get(layout.split("(")[0].strip())
    if channels is None:
        found = re.match(r"(\d+) channels", layout)
        channels = int(found.group(1)) if found else 0
    return AudioInfo(sample_rate=int(match.group(2)), channels=channels, codec=match.group(1))


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE, min_rms_dbfs: float | None = -60.0) -> np.ndarray:
    """Decode the first audio stream of a file to mono float32.

    Args:
        path: any audio or video file ffmpeg reads (wav, mp3, flac, mpg, mp4...).
        sample_rate: output rate in Hz.
        min_rms_dbfs: reject audio whose RMS level is below this (dB full scale), i.e.
            silent tracks; ``None`` disables the check.

    Returns:
        ``(N,)`` float32 samples in [-1, 1] at ``sample_rate``.

    Raises:
        MediaError: missing or 0-byte file, no audio stream, undecodable, empty or silent audio.
    """
    path = Path(path)
    if not path.is_file():
        raise MediaError(path, "file not found")
    if path.stat().st_size == 0:
        raise MediaError(path, "file is empty (0 bytes)")
    try:
        out, _ = (
            ffmpeg.input(str(path))
            .output("pipe:", format="f32le", acodec="pcm_f32le", ac=1, ar=sample_rate, map="0:a:0")
            .global_args("-nostdin", "-v", "error")
            .run(cmd=ffmpeg_exe(), capture_stdout=True, capture_stderr=True)
        )
    except ffmpeg.Error as exc:
        msg = exc.stderr.decode("utf-8", "replace") if exc.stderr else ""
        if "matches no streams" in msg or "does not contain any stream" in msg:
            raise MediaError(path, "no audio stream") from exc
        last = msg.strip().splitlines()[-1] if msg.strip() else "no message"
        raise MediaError(path, f"ffmpeg failed to decode the audio ({last})") from exc
    audio = np.frombuffer(out, np.float32).copy()
    del out  # a2v: one copy of the samples at a time (the decoded bytes, then the array)
    if audio.size == 0:
        raise MediaError(path, "audio stream is empty")
    if min_rms_dbfs is not None:
        rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
        level = 20.0 * np.log10(max(rms, 1e-12))
        if level < min_rms_dbfs:
            raise MediaError(path, f"audio is silent (RMS {level:.1f} dBFS < {min_rms_dbfs:.0f} dBFS)")
    return np.clip(audio, -1.0, 1.0, out=audio)


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write mono float audio as 16-bit PCM WAV, atomically (temp name, then rename).

    Args:
        path: output file.
        audio: ``(N,)`` float samples in [-1, 1].
        sample_rate: rate in Hz.

    Raises:
        ValueError: audio is not one-dimensional.
    """
    import soundfile

    path = Path(path)
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"audio must be mono (N,), got shape {audio.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".wav", prefix=f".{path.stem}.", dir=path.parent)
    os.close(fd)
    try:
        soundfile.write(tmp, np.clip(audio, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
