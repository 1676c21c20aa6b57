"""Video/audio I/O on real GRID clips and on damaged copies of them."""

from __future__ import annotations


import numpy as np
import pytest
import soundfile

from a2v.errors import MediaError
from a2v.io.audio import load_audio, write_wav
from a2v.io.video import probe_video, read_frames, write_video


def test_grid_clip_decodes_at_25fps(s1_clip):
    info = probe_video(s1_clip)
    assert (info.width, info.height, info.fps, info.has_audio) == (360, 288, 25.0, True)
    frames = read_frames(s1_clip)
    assert frames.shape == (75, 288, 360, 3) and frames.dtype == np.uint8
    assert frames.std() > 10  # a real picture, not a blank frame


def test_audio_is_16k_mono_float_with_speech(s1_clip):
    audio = load_audio(s1_clip)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) / 16000 - 3.0) < 0.05
    assert 0.01 < np.sqrt(np.mean(audio**2)) < 0.5


def test_any_rate_and_channels_resampled(tmp_path, s1_clip):
    audio = load_audio(s1_clip, sample_rate=44100, min_rms_dbfs=None)
    stereo = np.stack([audio, audio * 0.5], axis=1)
    path = tmp_path / "stereo44k.wav"
    soundfile.write(path, stereo, 44100)
    back = load_audio(path)
    assert abs(len(back) - len(audio) * 16000 / 44100) < 50


def test_silent_audio_rejected_with_file_name(tmp_path):
    path = tmp_path / "silence.wav"
    write_wav(path, np.zeros(16000, np.float32))
    with pytest.raises(MediaError, match="silence.wav.*silent"):
        load_audio(path)


def test_truncated_video_named(tmp_path, s1_clip):
    bad = tmp_path / "truncated.mpg"
    bad.write_bytes(s1_clip.read_bytes()[:300_000])  # 73% of the file: ffmpeg salvages 56 frames
    with pytest.raises(MediaError, match="truncated.mpg: video is truncated or corrupt"):
        read_frames(bad)


def test_video_without_audio_named(tmp_path, s1_clip):
    frames = read_frames(s1_clip)[:10]
    path = write_video(tmp_path / "mute.mp4", frames)
    assert not probe_video(path).has_audio
    with pytest.raises(MediaError, match="mute.mp4: no audio"):
        load_audio(path)


def test_write_video_roundtrip_with_audio(tmp_path, s1_clip):
    frames = read_frames(s1_clip)[:, 16:272, 52:308]
    audio = load_audio(s1_clip)[: 3 * 16000]
    out = write_video(tmp_path / "out.mp4", frames, 25.0, audio, 16000)
    info = probe_video(out)
    assert info.has_audio and info.fps == 25.0
    back = read_frames(out)
    assert len(back) == 75
    assert np.abs(back.astype(int) - frames.astype(int)).mean() < 4  # crf 18: near-lossless
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_missing_file():
    with pytest.raises(MediaError, match="not found"):
        probe_video("/nonexistent/clip.mpg")
