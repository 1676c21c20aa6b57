"""Voice activity detection (a2v.audio.speech_detection, Silero VAD v6 from faster-whisper's assets) on
real GRID audio: the speech it finds against the clip's word alignment, and none in the room noise."""

import numpy as np
import pytest

from a2v.audio.speech_detection import check_speech, speech_segments
from a2v.errors import MediaError
from a2v.io.audio import load_audio


def _alignment(path):
    """(first word start, last word end) in seconds from a GRID .align file (units of 1/25000 s)."""
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    words = [(int(a), int(b)) for a, b, w in rows if w not in ("sil", "sp")]
    return words[0][0] / 25000, words[-1][1] / 25000


@pytest.mark.parametrize("rate", [16000, 44100])
def test_speech_found_where_the_alignment_puts_the_words(grid_sample, rate):
    """On every sample clip the speech found covers at least 70 % of the aligned words' span (76–97 %
    measured on the 16) and starts no earlier than 0.1 s before the first word."""
    for clip in sorted((grid_sample / "s1").glob("*.mpg")):
        start, end = _alignment(grid_sample / "alignments" / "s1" / f"{clip.stem}.align")
        segments = speech_segments(load_audio(clip, rate), rate)
        covered = sum(max(0.0, min(e, end) - max(s, start)) for s, e in segments)
        assert segments and covered >= 0.7 * (end - start) and segments[0][0] > start - 0.1, (clip.name, segments, start, end)
        assert check_speech(load_audio(clip, rate), rate, clip) >= covered


def test_room_noise_without_speech_is_refused_naming_the_file(grid_sample):
    clip = grid_sample / "s1" / "bgbn8n.mpg"
    start, _ = _alignment(grid_sample / "alignments" / "s1" / "bgbn8n.align")
    wave = load_audio(clip, 16000)
    noise = np.tile(wave[: int((start - 0.05) * 16000)], 5)  # the recording before the first word
    assert 20 * np.log10(np.sqrt(np.mean(noise ** 2))) > -60  # loud enough to pass the silence floor
    assert speech_segments(noise, 16000) == []
    with pytest.raises(MediaError, match=rf"room\.wav: no speech detected in {len(noise) / 16000:.2f} s of audio"):
        check_speech(noise, 16000, "room.wav")
