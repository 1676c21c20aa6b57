"""Per-video-frame audio features: MFCC windows, mel, F0 and energy (with 256-bin quantisation).

Every feature is indexed by video frame through :mod:`a2v.audio.timebase` (windows centred on
``(t + 0.5) / fps``, zero padding at both ends, stride ``sr / fps``). Audio is mono float32 at
16 kHz (:func:`a2v.io.audio.load_audio`).

Definitions (a2v's reading of the papers, one place):

* ``mfcc`` — 13 MFCCs (librosa, 25 ms Hann window, 10 ms hop, 40 mel bands) for the 20
  sub-frames whose centres span the 200 ms window around the frame (OneShotA2V §3.1/§6.1:
  13 MFCC over 200 ms of audio per frame). Shape ``(T, 20, 13)`` float32.
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

from dataclasses import dataclass

import librosa
import numpy as np

from a2v.audio.timebase import frame_centres_s, frame_windows, resample_to_frames


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


def mfcc_windows(audio: np.ndarray, n_frames: int, cfg: AudioFeatureConfig, subframes: int | None = None,
                 drop_c0: bool = False) -> np.ndarray:
    """MFCCs of ``subframes`` 10 ms sub-frames centred on each video frame.

    Args:
        audio: ``(N,)`` float32 at ``cfg.sample_rate``.
        n_frames: video frames T.
        cfg: feature parameters (window, hop, ``n_mfcc``).
        subframes: sub-frames per video frame; ``cfg.mfcc_subframes`` (20, 200 ms) when None.
        drop_c0: drop the first coefficient (CRAN).

    Returns:
        ``(T, subframes, n_mfcc)`` float32, or ``(T, subframes, n_mfcc - 1)`` with ``drop_c0``.
    """
    sr = cfg.sample_rate
    subframes = cfg.mfcc_subframes if subframes is None else int(subframes)
    win = int(round(cfg.mfcc_win_s * sr))
    hop = int(round(cfg.mfcc_hop_s * sr))
    span = (subframes - 1) * hop + win
    windows = frame_windows(audio, sr, cfg.fps, n_frames, span / sr)
    mfcc = librosa.feature.mfcc(
        y=windows, sr=sr, n_mfcc=cfg.n_mfcc, n_fft=win, hop_length=hop, n_mels=40, center=False
    )  # (T, n_mfcc, subframes)
    if drop_c0:
        mfcc = mfcc[:, 1:]
    return np.ascontiguousarray(mfcc.transpose(0, 2, 1), dtype=np.float32)


def mel_vectors(audio: np.ndarray, n_frames: int, cfg: AudioFeatureConfig) -> np.ndarray:
    """Log-mel power (dB) of the 200 ms window centred on each frame. Returns ``(T, n_mels)`` float32."""
    windows = frame_windows(audio, cfg.sample_rate, cfg.fps, n_frames, cfg.mel_window_s)
    spec = np.abs(np.fft.rfft(windows * np.hanning(windows.shape[1])[None], n=cfg.n_fft_mel)) ** 2
    basis = librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft_mel, n_mels=cfg.n_mels, fmin=0.0)
    return librosa.power_to_db(spec @ basis.T, ref=1.0, amin=1e-10, top_db=None).astype(np.float32)


def f0_track(audio: np.ndarray, n_frames: int, cfg: AudioFeatureConfig) -> np.ndarray:
    """WORLD F0 in Hz at each video frame (0 = unvoiced). Returns ``(T,)`` float32."""
    import pyworld

    x = np.asarray(audio, np.float64)
    period_ms = 1000.0 * cfg.pitch_hop / cfg.sample_rate
    f0, times = pyworld.dio(x, cfg.sample_rate, f0_floor=cfg.f0_min_hz, f0_ceil=cfg.f0_max_hz, frame_period=period_ms)
    f0 = pyworld.stonemask(x, f0, times, cfg.sample_rate)
    idx = np.clip(np.round(frame_centres_s(n_frames, cfg.fps) / (period_ms / 1000.0)).astype(int), 0, len(f0) - 1)
    return f0[idx].astype(np.float32)


def energy_track(audio: np.ndarray, n_frames: int, cfg: AudioFeatureConfig) -> np.ndarray:
    """L2 norm of each STFT frame's magnitude, at each video frame. Returns ``(T,)`` float32."""
    mag = np.abs(librosa.stft(audio, n_fft=cfg.pitch_frame, hop_length=cfg.pitch_hop, center=True))
    energy = np.linalg.norm(mag, axis=0)
    times = np.arange(len(energy)) * cfg.pitch_hop / cfg.sample_rate
    return resample_to_frames(energy, times, n_frames, cfg.fps)


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


def audio_features(audio: np.ndarray, n_frames: int, cfg: AudioFeatureConfig = AudioFeatureConfig()) -> dict[str, np.ndarray]:
    """All per-frame audio features of one waveform.

    Args:
        audio: ``(N,)`` float32 mono waveform at ``cfg.sample_rate``.
        n_frames: number of video frames T to index the features by.
        cfg: feature parameters.

    Returns:
        dict with ``mfcc (T,20,13)``, ``mfcc_cran (T,35,12)``, ``mel (T,256)``, ``f0 (T,)``, ``f0_bin (T,) uint8``,
        ``energy (T,)``, ``energy_bin (T,) uint8`` — see the module docstring.

    Raises:
        ValueError: empty audio or ``n_frames < 1``.
    """
    audio = np.asarray(audio, np.float32)
    if audio.ndim != 1 or audio.size == 0:
        raise ValueError(f"audio must be a non-empty mono (N,) array, got shape {audio.shape}")
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    f0 = f0_track(audio, n_frames, cfg)
    energy = energy_track(audio, n_frames, cfg)
    return {
        "mfcc": mfcc_windows(audio, n_frames, cfg),
        "mfcc_cran": mfcc_windows(audio, n_frames, cfg, cfg.cran_subframes, drop_c0=True),
        "mel": mel_vectors(audio, n_frames, cfg),
        "f0": f0,
        "f0_bin": quantize_f0(f0, cfg),
        "energy": energy,
        "energy_bin": quantize_energy(energy, cfg),
    }
