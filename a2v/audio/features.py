"""Per-video-frame audio features: MFCC windows, mel, F0 and energy (with 256-bin quantisation).

Every feature is indexed by video frame through :mod:`a2v.audio.timebase` (windows centred on
``(t + 0.5) / fps``, zero padding at both ends, stride ``sr / fps``). Audio is mono float32 at
16 kHz (:func:`a2v.io.audio.load_audio`). :func:`audio_features` computes a whole clip (the
features stage); :func:`audio_feature_chunks` the same numbers a chunk of frames at a time, in
memory that does not grow with the clip (``a2v generate``).

Definitions (a2v's reading of the papers, one place):

* ``mfcc`` — 13 MFCCs (librosa, 25 ms Hann window, 10 ms hop, 40 mel bands, log-mel floored
  80 dB below the clip's loudest sub-frame) for the 20 sub-frames whose centres span the 200 ms
  window around the frame (OneShotA2V §3.1/§6.1: 13 MFCC over 200 ms of audio per frame).
  Shape ``(T, 20, 13)`` float32. (a2v: the mel projection is one matmul per frame so that chunks
  equal the whole clip; shards made before differ by float32 rounding, at most 6e-5, from
  ``librosa.feature.mfcc``.)
* ``mfcc_cran`` — the CRAN audio input (Song et al., IJCAI 2019, §4.2): MFCCs of the 350 ms
  around the frame as a 35×12 map — 35 sub-frames at the same 10 ms hop, 13 coefficients with the
  first (c0, the log energy) dropped. Shape ``(T, 35, 12)`` float32.
* ``mel`` — log-mel power spectrum in dB of one 200 ms Hann window centred on the frame,
  ``n_fft`` 4096, 256 mel bands 0–8 kHz (MAN §4.1 "256 dimensional mel spectrogram
  features"). Shape ``(T, 256)`` float32.
* ``f0`` — fundamental frequency in Hz by WORLD (pyworld DIO + StoneMask) with a hop of 256
  samples (16 ms) at 16 kHz (MAN §4.1), taken at the nearest WORLD frame to each video frame's
  centre; 0 means unvoiced. Shape ``(T,)`` float32.
* ``energy`` — L2 norm of the STFT magnitude of each 1024-sample frame (hop 256) (MAN §4.1),
  interpolated to the frame centres. Shape ``(T,)`` float32.
* ``f0_bin`` / ``energy_bin`` — each quantised to 256 values (MAN §4.1). F0: bin 0 = unvoiced,
  bins 1–255 log-spaced between ``f0_min_hz`` and ``f0_max_hz``. Energy: 256 bins uniform in
  ``log(energy)`` between ``log_energy_min`` and ``log_energy_max``. Shape ``(T,)`` uint8.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import librosa
import numpy as np

from a2v.audio.timebase import audio_segment, frame_centres_s, frame_windows


@dataclass(frozen=True)
class AudioFeatureConfig:
    """Parameters of the per-frame audio features (units in the field names).

    Attributes:
        sample_rate: Hz (16000, MAN §4.1).
        fps: video frames per second (25).
        n_mfcc: MFCC coefficients (13).
        mfcc_subframes: sub-frames per video frame (20 → 200 ms at a 10 ms hop).
        cran_subframes: sub-frames of the CRAN MFCC map (35 → 350 ms); its coefficients are
            ``n_mfcc`` with c0 dropped (12).
        mfcc_win_s, mfcc_hop_s: MFCC analysis window and hop in seconds.
        mel_window_s: length of the window the mel vector is computed over, seconds.
        n_mels: mel bands (256).
        n_fft_mel: FFT size for the mel vector.
        pitch_frame, pitch_hop: STFT frame and hop in samples for F0/energy (1024, 256).
        f0_min_hz, f0_max_hz: F0 search range and quantisation range in Hz.
        log_energy_min, log_energy_max: quantisation range of ``ln(energy)``.
        n_bins: quantisation levels (256).
    """

    sample_rate: int = 16000
    fps: float = 25.0
    n_mfcc: int = 13
    mfcc_subframes: int = 20
    cran_subframes: int = 35
    mfcc_win_s: float = 0.025
    mfcc_hop_s: float = 0.010
    mel_window_s: float = 0.2
    n_mels: int = 256
    n_fft_mel: int = 4096
    pitch_frame: int = 1024
    pitch_hop: int = 256
    f0_min_hz: float = 60.0
    f0_max_hz: float = 500.0
    log_energy_min: float = -2.0
    log_energy_max: float = 7.0
    n_bins: int = 256


FEATURE_KEYS = ("mfcc", "mfcc_cran", "mel", "f0", "f0_bin", "energy", "energy_bin")
"""The features :func:`audio_features` computes, in its dict's order."""

CHUNK_FRAMES = 100
"""Video frames per chunk of :func:`audio_feature_chunks` (4 s at 25 fps)."""

F0_MARGIN_S = 1.0
"""Seconds of audio on each side of a chunk that WORLD's F0 tracking reads (see :func:`f0_track`)."""

MFCC_TOP_DB = 80.0
"""The floor of the MFCCs' log-mel, dB below the clip's loudest sub-frame (librosa's ``top_db``)."""


def _mfcc_log_mel(audio: np.ndarray, n_frames: int, cfg: AudioFeatureConfig, subframes: int, first_frame: int) -> np.ndarray:
    """Log-mel power in dB (40 bands, no floor) of the MFCC sub-frames of frames ``first_frame …``:
    ``(n_frames, 40, subframes)`` float32."""
    sr = cfg.sample_rate
    win = int(round(cfg.mfcc_win_s * sr))
    hop = int(round(cfg.mfcc_hop_s * sr))
    span = (subframes - 1) * hop + win
    windows = frame_windows(audio, sr, cfg.fps, n_frames, span / sr, first_frame)
    power = np.abs(librosa.stft(windows, n_fft=win, hop_length=hop, center=False)) ** 2  # (T, 1 + win // 2, subframes)
    basis = librosa.filters.mel(sr=sr, n_fft=win, n_mels=40)
    # a2v: librosa.feature.melspectrogram's einsum is blocked by BLAS over the whole batch, which moves its
    # float32 rounding with the number of frames (up to 6e-5 on the MFCCs); matmul is one product per frame
    return librosa.power_to_db(np.matmul(basis, power), ref=1.0, amin=1e-10, top_db=None)


def mfcc_peak_db(audio: np.ndarray, n_frames: int, cfg: AudioFeatureConfig, subframes: int | None = None,
                 chunk: int = CHUNK_FRAMES) -> float:
    """The loudest MFCC sub-frame of a clip's ``n_frames`` frames: the maximum of their log-mel
    (dB), computed ``chunk`` frames at a time — the ``peak_db`` of :func:`mfcc_windows`.

    Raises:
        ValueError: ``n_frames`` or ``chunk`` < 1.
    """
    subframes = cfg.mfcc_subframes if subframes is None else int(subframes)
    if n_frames < 1 or chunk < 1:
        raise ValueError(f"n_frames and chunk must be >= 1, got {n_frames}, {chunk}")
    return max(float(_mfcc_log_mel(audio, min(chunk, n_frames - t0), cfg, subframes, t0).max())
               for t0 in range(0, n_frames, chunk))


def mfcc_windows(audio: np.ndarray, n_frames: int, cfg: AudioFeatureConfig, subframes: int | None = None,
                 drop_c0: bool = False, first_frame: int = 0, peak_db: float | None = None) -> np.ndarray:
    """MFCCs of ``subframes`` 10 ms sub-frames centred on each video frame.

    The log-mel is floored at ``peak_db - 80`` dB (librosa's ``top_db``), ``peak_db`` being the
    loudest sub-frame of the whole clip: this is a whole-clip quantity, so a chunk of a clip
    (``first_frame`` > 0 or fewer frames than the clip) equals the whole-clip computation only with
    the clip's ``peak_db`` (:func:`mfcc_peak_db`).

    Args:
        audio: ``(N,)`` float32 at ``cfg.sample_rate`` (the whole clip).
        n_frames: video frames (from ``first_frame``).
        cfg: feature parameters (window, hop, ``n_mfcc``).
        subframes: sub-frames per video frame; ``cfg.mfcc_subframes`` (20, 200 ms) when None.
        drop_c0: drop the first coefficient (CRAN).
        first_frame: the first video frame (0-based).
        peak_db: the clip's loudest sub-frame, dB; ``None``: the loudest of these frames (right
            when they are the whole clip).

    Returns:
        ``(n_frames, subframes, n_mfcc)`` float32, or ``(n_frames, subframes, n_mfcc - 1)`` with ``drop_c0``.
    """
    subframes = cfg.mfcc_subframes if subframes is None else int(subframes)
    log_mel = _mfcc_log_mel(audio, n_frames, cfg, subframes, first_frame)  # (T, 40, subframes)
    peak = float(log_mel.max()) if peak_db is None else float(peak_db)
    log_mel = np.maximum(log_mel, np.asarray(peak - MFCC_TOP_DB, log_mel.dtype))
    mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=cfg.n_mfcc)  # (T, n_mfcc, subframes)
    if drop_c0:
        mfcc = mfcc[:, 1:]
    return np.ascontiguousarray(mfcc.transpose(0, 2, 1), dtype=np.float32)


def mel_vectors(audio: np.ndarray, n_frames: int, cfg: AudioFeatureConfig, first_frame: int = 0) -> np.ndarray:
    """Log-mel power (dB) of the 200 ms window centred on each frame ``first_frame …``. Returns
    ``(n_frames, n_mels)`` float32."""
    windows = frame_windows(audio, cfg.sample_rate, cfg.fps, n_frames, cfg.mel_window_s, first_frame)
    spec = np.abs(np.fft.rfft(windows * np.hanning(windows.shape[1])[None], n=cfg.n_fft_mel)) ** 2
    basis = librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft_mel, n_mels=cfg.n_mels, fmin=0.0)
    return librosa.power_to_db(spec @ basis.T, ref=1.0, amin=1e-10, top_db=None).astype(np.float32)


def f0_track(audio: np.ndarray, n_frames: int, cfg: AudioFeatureConfig, first_frame: int = 0,
             margin_s: float = F0_MARGIN_S) -> np.ndarray:
    """WORLD F0 in Hz at video frames ``first_frame …`` (0 = unvoiced). Returns ``(n_frames,)`` float32.

    WORLD (DIO + StoneMask) runs on the audio of the frames plus ``margin_s`` seconds on each
    side (clipped to the clip), its 16-ms frames on the whole clip's grid; when that covers the
    clip, this is the whole-clip track.

    a2v: DIO's contour fixing looks a few frames beyond each frame (and its voiced-section
    extension further, in principle), so a chunk's track equals the whole clip's only with enough
    margin: measured on GRID speech (a 3-s clip, and 60 s of tiled clips in chunks of 25 and 100
    frames), margins of 0.25 s and more give identical float32 tracks, 0.1 s does not (10 of 1500
    frames differ), and so they do with a 0.05 DC offset added and on 60 s of a continuously voiced
    harmonic tone (no unvoiced gap for the fixing to stop at); the default, 1 s, is four times that.
    """
    import pyworld

    hop, sr = cfg.pitch_hop, cfg.sample_rate
    period_ms = 1000.0 * hop / sr
    n_world = int(1000.0 * len(audio) / sr / period_ms) + 1  # WORLD frames of the whole clip (pyworld's count)
    idx = np.clip(np.round(frame_centres_s(n_frames, cfg.fps, first_frame) / (period_ms / 1000.0)).astype(int), 0, n_world - 1)
    margin = int(round(margin_s * sr))
    start = max(0, (int(idx.min()) * hop - margin) // hop * hop)  # on the WORLD grid
    stop = min(len(audio), int(idx.max()) * hop + margin)
    x = np.asarray(audio[start:stop], np.float64)
    f0, times = pyworld.dio(x, sr, f0_floor=cfg.f0_min_hz, f0_ceil=cfg.f0_max_hz, frame_period=period_ms)
    f0 = pyworld.stonemask(x, f0, times, sr)
    return f0[np.minimum(idx - start // hop, len(f0) - 1)].astype(np.float32)


def energy_track(audio: np.ndarray, n_frames: int, cfg: AudioFeatureConfig, first_frame: int = 0) -> np.ndarray:
    """L2 norm of each STFT frame's magnitude (``pitch_frame`` samples, hop ``pitch_hop``, centred,
    zero-padded), linearly interpolated to video frames ``first_frame …``. Returns ``(n_frames,)``
    float32. Only the STFT frames around these video frames are computed (the same numbers as
    the whole clip's)."""
    hop, n_fft, sr = cfg.pitch_hop, cfg.pitch_frame, cfg.sample_rate
    n_stft = 1 + len(audio) // hop  # frames of librosa.stft(center=True) over the whole clip
    centres = frame_centres_s(n_frames, cfg.fps, first_frame)
    below = np.floor(centres * sr / hop).astype(np.int64)
    k0, k1 = int(np.clip(below.min(), 0, n_stft - 1)), int(np.clip(below.max() + 1, 0, n_stft - 1))
    segment = audio_segment(audio, k0 * hop - n_fft // 2, k1 * hop + n_fft // 2)  # STFT frames k0..k1
    mag = np.abs(librosa.stft(segment, n_fft=n_fft, hop_length=hop, center=False))
    energy = np.linalg.norm(mag, axis=0)
    times = np.arange(k0, k1 + 1) * hop / sr
    return np.interp(centres, times, energy).astype(np.float32)


def quantize_f0(f0_hz: np.ndarray, cfg: AudioFeatureConfig) -> np.ndarray:
    """F0 → 256 bins: 0 unvoiced, 1–255 log-spaced over [f0_min_hz, f0_max_hz]. ``(T,)`` uint8."""
    voiced = f0_hz > 0
    lo, hi = np.log(cfg.f0_min_hz), np.log(cfg.f0_max_hz)
    pos = (np.log(np.where(voiced, f0_hz, cfg.f0_min_hz)) - lo) / (hi - lo)
    bins = 1 + np.clip(np.round(pos * (cfg.n_bins - 2)), 0, cfg.n_bins - 2)
    return np.where(voiced, bins, 0).astype(np.uint8)


def quantize_energy(energy: np.ndarray, cfg: AudioFeatureConfig) -> np.ndarray:
    """Energy → 256 bins uniform in ln(energy) over [log_energy_min, log_energy_max]. ``(T,)`` uint8."""
    pos = (np.log(np.maximum(energy, 1e-8)) - cfg.log_energy_min) / (cfg.log_energy_max - cfg.log_energy_min)
    return np.clip(np.round(pos * (cfg.n_bins - 1)), 0, cfg.n_bins - 1).astype(np.uint8)


def _check(audio: np.ndarray, n_frames: int, keys) -> tuple[np.ndarray, tuple[str, ...]]:
    audio = np.asarray(audio, np.float32)
    if audio.ndim != 1 or audio.size == 0:
        raise ValueError(f"audio must be a non-empty mono (N,) array, got shape {audio.shape}")
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    keys = FEATURE_KEYS if keys is None else tuple(keys)
    unknown = sorted(set(keys) - set(FEATURE_KEYS))
    if unknown:
        raise ValueError(f"unknown audio features {unknown}; known: {list(FEATURE_KEYS)}")
    return audio, keys


def audio_feature_chunks(audio: np.ndarray, n_frames: int, cfg: AudioFeatureConfig = AudioFeatureConfig(),
                         chunk: int = CHUNK_FRAMES, keys=None) -> Iterator[dict[str, np.ndarray]]:
    """The per-frame audio features of one waveform, ``chunk`` video frames at a time: memory
    does not grow with the clip's length (but for the waveform itself).

    Each chunk's features equal the whole clip's for those frames (:func:`audio_features`, which
    is this with one chunk): every window is cut from the whole clip's zero-padded time base, the
    MFCCs take the clip's loudest sub-frame from a first pass over the chunks
    (:func:`mfcc_peak_db`; only when there is more than one chunk), and WORLD reads
    ``F0_MARGIN_S`` of audio beyond each side of a chunk (:func:`f0_track`, where the equality is
    measured rather than exact by construction). Measured on a real 3-s GRID clip in chunks of 25
    frames and on 60 s of tiled GRID speech in chunks of 100 frames: every feature identical
    (max abs difference 0).

    Args:
        audio: ``(N,)`` float32 mono waveform at ``cfg.sample_rate``.
        n_frames: video frames T to index the features by.
        cfg: feature parameters.
        chunk: video frames per chunk (>= 1); the last chunk holds the rest.
        keys: the features to compute (a subset of :data:`FEATURE_KEYS`), all when None.

    Yields:
        dicts of the ``keys`` for consecutive frames, each ``(n, …)`` as in :func:`audio_features`,
        ``n = chunk`` but for the last.

    Raises:
        ValueError: empty or non-mono audio, ``n_frames < 1``, ``chunk < 1``, unknown keys (when
            the iteration starts).
    """
    audio, keys = _check(audio, n_frames, keys)
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1 frame, got {chunk}")
    peaks = {}
    if n_frames > chunk:  # the MFCC floor is the whole clip's: its loudest sub-frame first
        for key, subframes in (("mfcc", cfg.mfcc_subframes), ("mfcc_cran", cfg.cran_subframes)):
            if key in keys:
                peaks[key] = mfcc_peak_db(audio, n_frames, cfg, subframes, chunk)
    want = set(keys)
    for t0 in range(0, n_frames, chunk):
        n = min(chunk, n_frames - t0)
        out = {}
        if "mfcc" in want:
            out["mfcc"] = mfcc_windows(audio, n, cfg, first_frame=t0, peak_db=peaks.get("mfcc"))
        if "mfcc_cran" in want:
            out["mfcc_cran"] = mfcc_windows(audio, n, cfg, cfg.cran_subframes, drop_c0=True, first_frame=t0,
                                            peak_db=peaks.get("mfcc_cran"))
        if "mel" in want:
            out["mel"] = mel_vectors(audio, n, cfg, t0)
        if want & {"f0", "f0_bin"}:
            out["f0"] = f0_track(audio, n, cfg, t0)
            out["f0_bin"] = quantize_f0(out["f0"], cfg)
        if want & {"energy", "energy_bin"}:
            out["energy"] = energy_track(audio, n, cfg, t0)
            out["energy_bin"] = quantize_energy(out["energy"], cfg)
        yield {k: out[k] for k in keys}


def audio_features(audio: np.ndarray, n_frames: int, cfg: AudioFeatureConfig = AudioFeatureConfig(),
                   keys=None) -> dict[str, np.ndarray]:
    """All per-frame audio features of one waveform (:func:`audio_feature_chunks` in one chunk).

    Args:
        audio: ``(N,)`` float32 mono waveform at ``cfg.sample_rate``.
        n_frames: number of video frames T to index the features by.
        cfg: feature parameters.
        keys: the features to compute (a subset of :data:`FEATURE_KEYS`), all when None.

    Returns:
        dict with ``mfcc (T,20,13)``, ``mfcc_cran (T,35,12)``, ``mel (T,256)``, ``f0 (T,)``, ``f0_bin (T,) uint8``,
        ``energy (T,)``, ``energy_bin (T,) uint8`` (or the ``keys``) — see the module docstring.

    Raises:
        ValueError: empty audio, ``n_frames < 1``, unknown keys.
    """
    return next(audio_feature_chunks(audio, n_frames, cfg, max(1, int(n_frames)), keys))
