"""Networks of the speech-driven GAN of Jain et al., *Speech Driven Video Generation from Facial
Images* (``../shared/docs/papers/sdgan_speech_driven_video_from_facial_images.md``; after their
reference [2], Vougioukas et al., *End-to-End Speech-Driven Facial Animation with Temporal GANs*).

Generator (§III.1–4; :class:`SdganGenerator`), per frame ``t`` of a sequence:

* **audio encoder** (§III.1, :class:`AudioEncoder`): 5 conv + 2 FC layers on the frame's MFCC
  window, then a 2-layer GRU over the frames → ``a_t`` (``audio_rnn`` dims);
* **identity encoder** (§III.2, :class:`IdentityEncoder`): a CNN on the still reference image →
  a 50-dim code ``e`` (``tanh``) and the feature maps of its first 4 layers (U-Net skips);
* **noise generator** (§III.3, :class:`NoiseGenerator`): a 2-layer GRU on 10-dim ``N(0, 0.77²)``
  noise → temporally coherent noise ``n_t``;
* **frame decoder** (§III.4, :class:`FrameDecoder`): ``[a_t, e, n_t]`` → frame, transposed and
  plain convolutions alternating, each plain conv on the previous transposed conv's output
  concatenated with one identity-encoder skip.

Discriminators (§III.5–6, §IV): :class:`FrameDiscriminator` (4 conv + pooling and 2 FC layers on
the frame concatenated with the reference still → one logit) and :class:`SequenceDiscriminator`
(per-frame image and audio encodings → GRU → 1-D spatial pyramid pooling over time,
:class:`a2v.models.spp.TemporalPyramidPool` → 2 FC layers → one logit per sequence of any length).

Tensors: images are float32 RGB in [-1, 1], ``(…, 3, s, s)`` with ``s`` = ``net_size`` (pixels);
audio is the shard's per-frame MFCC window (:data:`AUDIO_FEATURES`), standardised per coefficient
(dimensionless), ``(…, T, time, coefficients)``.

a2v choices (each marked "a2v:" where it is made):

* a2v: **square frames**. The paper's identity encoder takes ``3 × 128 × 96`` (rows × columns);
  a2v's shards hold square aligned face crops, so the networks work on ``s × s`` with ``s`` a power
  of two (``net_size``; default = ``image_size``). The layer counts follow reference [2]'s rule
  (stride-2 convolutions down to ``4 × 4``, then one ``4 × 4`` convolution to the code), which gives
  the paper's 6 identity-encoder layers and 6 transposed + 4 plain decoder convolutions at
  ``s = 128``; 64² has 5 + 5 (the 4 skips stay), 256² 7 + 7.
* a2v: **audio input**. §III.1 feeds MFCC to an encoder "similar to the audio encoder of You Said
  That? [1]"; the shards have no raw audio (reference [2] uses raw waveforms), so the input is the
  shard's ``mfcc_cran``: MFCC c1–c12 × 35 sub-frames over the 350 ms centred on the frame — the
  12 × 35 input of You Said That?. ``mfcc`` (13 × 20, 200 ms) is the alternative.
* a2v: the audio encoder's layer sizes are You Said That?'s (conv 64, 128, 256, 256, 512, 3 × 3,
  max pooling after conv 1, 2, 5; FC 512, 256) scaled by ``audio_channels / 64``; the frame
  discriminator's are 3 × 3 convs doubling from ``base_channels`` with 2 × 2 average pooling and a
  ``hidden``-unit FC; batch norm + ReLU in the generator, LeakyReLU(0.2) and no normalisation in
  the discriminators; the noise GRU's output is squashed by ``tanh`` (as in [2]'s code); every GRU
  runs in float32 even under bf16 autocast.
* a2v: PyTorch's default weight initialisation (the paper names none).
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from a2v.models.spp import POOLS, TemporalPyramidPool
from a2v.settings import dataclass_from_dict

AUDIO_FEATURES: dict[str, tuple[int, int]] = {"mfcc_cran": (35, 12), "mfcc": (20, 13)}
"""Shard audio features the audio encoder reads → their per-frame shape ``(time sub-frames,
coefficients)`` (:mod:`a2v.features.shard`)."""


# ---------------------------------------------------------------------------------------- config
@dataclass
class FrameDiscriminatorConfig:
    """``model.frame_discriminator`` (Jain et al. §III.5).

    Attributes:
        base_channels: width of the first conv (doubling per layer up to ``max_channels``).
        max_channels: width cap.
        n_layers: conv + pooling layers (paper: 4).
        hidden: units of the first FC layer (a2v: 256).
    """

    base_channels: int = 64
    max_channels: int = 512
    n_layers: int = 4
    hidden: int = 256

    def __post_init__(self):
        for k in ("base_channels", "max_channels", "n_layers", "hidden"):
            if int(getattr(self, k)) < 1:
                raise ValueError(f"model.frame_discriminator.{k} must be >= 1, got {getattr(self, k)}")


@dataclass
class SequenceDiscriminatorConfig:
    """``model.sequence_discriminator`` (Jain et al. §III.6).

    Attributes:
        frame_channels, max_channels: per-frame image encoder width (first layer; cap).
        frame_code: its per-frame code size.
        audio_channels, audio_fc, audio_code: its own audio encoder (:class:`AudioEncoder`).
        rnn_hidden, rnn_layers: the GRU over the frames.
        levels, pool: the 1-D pyramid pooling (:class:`~a2v.models.spp.TemporalPyramidPool`).
        hidden: units of the first of the 2 FC layers.

    a2v: every size here (the paper gives none); ``levels`` (1, 2, 4), max pooling.
    """

    frame_channels: int = 32
    max_channels: int = 256
    frame_code: int = 256
    audio_channels: int = 32
    audio_fc: int = 256
    audio_code: int = 128
    rnn_hidden: int = 256
    rnn_layers: int = 2
    levels: tuple[int, ...] = (1, 2, 4)
    pool: str = "max"
    hidden: int = 256

    def __post_init__(self):
        self.levels = tuple(int(n) for n in self.levels)
        for k in ("frame_channels", "max_channels", "frame_code", "audio_channels", "audio_fc", "audio_code",
                  "rnn_hidden", "rnn_layers", "hidden"):
            if int(getattr(self, k)) < 1:
                raise ValueError(f"model.sequence_discriminator.{k} must be >= 1, got {getattr(self, k)}")
        if not self.levels or min(self.levels) < 1:
            raise ValueError(f"model.sequence_discriminator.levels must be integers >= 1, got {list(self.levels)}")
        if self.pool not in POOLS:
            raise ValueError(f"model.sequence_discriminator.pool must be one of {POOLS}, got {self.pool!r}")


@dataclass
class SdganConfig:
    """The ``model`` section of the ``sdgan`` recipe.

    Attributes:
        image_size: side S of the frames the pipeline sees (= the shards' ``crop_size``), pixels.
        net_size: side s the networks work at (a power of two, >= 16); ``None`` → ``image_size``.
            When ``s != S`` training frames are resized to ``s`` and generated frames resized
            back to ``S`` (bilinear). a2v: the paper's 128 × 96 becomes ``net_size: 128``, square.
        audio_feature: the shard feature the audio encoder reads (:data:`AUDIO_FEATURES`; a2v:
            ``mfcc_cran``).
        audio_channels: width of the audio encoder's first conv (You Said That?: 64).
        audio_fc, audio_code: its FC layers' sizes (fc6 512, fc7 256).
        audio_rnn: hidden size of the audio GRU (a2v: 256, reference [2]'s).
        rnn_layers: layers of the audio and noise GRUs (paper: 2).
        id_channels, max_channels: identity encoder width (first layer, doubling; cap) — the
            decoder mirrors it (a2v: 64 … 1024, [2]'s).
        id_code: identity code size (paper: 50).
        skips: identity-encoder layers whose outputs reach the decoder (paper: the first 4).
        noise_dim, noise_std: noise generator input (paper: 10 dims, N(0, 0.77²)).
        frame_discriminator, sequence_discriminator: their sections.

    Raises:
        ValueError: a size < 1, ``net_size`` not a power of two >= 16 (or ``image_size`` not one
            when ``net_size`` is unset), more skips than encoder layers, an unknown audio feature.
    """

    image_size: int = 128
    net_size: int | None = None
    audio_feature: str = "mfcc_cran"
    audio_channels: int = 64
    audio_fc: int = 512
    audio_code: int = 256
    audio_rnn: int = 256
    rnn_layers: int = 2
    id_channels: int = 64
    max_channels: int = 1024
    id_code: int = 50
    skips: int = 4
    noise_dim: int = 10
    noise_std: float = 0.77
    frame_discriminator: FrameDiscriminatorConfig = field(default_factory=FrameDiscriminatorConfig)
    sequence_discriminator: SequenceDiscriminatorConfig = field(default_factory=SequenceDiscriminatorConfig)

    def __post_init__(self):
        if int(self.image_size) < 8:
            raise ValueError(f"model.image_size must be >= 8, got {self.image_size}")
        s = self.size
        if s < 16 or s & (s - 1):
            which = "net_size" if self.net_size is not None else "image_size (no net_size given)"
            raise ValueError(f"model.{which} must be a power of two >= 16 for the sdgan networks, got {s}")
        if self.audio_feature not in AUDIO_FEATURES:
            raise ValueError(f"model.audio_feature must be one of {sorted(AUDIO_FEATURES)}, got {self.audio_feature!r}")
        for k in ("audio_channels", "audio_fc", "audio_code", "audio_rnn", "rnn_layers", "id_channels", "max_channels",
                  "id_code", "noise_dim"):
            if int(getattr(self, k)) < 1:
                raise ValueError(f"model.{k} must be >= 1, got {getattr(self, k)}")
        if not 0 <= int(self.skips) <= self.n_down:
            raise ValueError(f"model.skips must be in [0, {self.n_down}] at net size {s}, got {self.skips}")
        if not float(self.noise_std) >= 0:
            raise ValueError(f"model.noise_std must be >= 0, got {self.noise_std}")
        if s % (2 ** self.frame_discriminator.n_layers):
            raise ValueError(f"net size {s} is not divisible by 2**model.frame_discriminator.n_layers")

    @property
    def size(self) -> int:
        """s, the networks' frame side in pixels."""
        return int(self.net_size if self.net_size is not None else self.image_size)

    @property
    def n_down(self) -> int:
        """Stride-2 layers of the identity encoder: ``log2(s) − 2`` (down to 4 × 4)."""
        return int(math.log2(self.size)) - 2

    @property
    def audio_shape(self) -> tuple[int, int]:
        """Per-frame audio input ``(time sub-frames, coefficients)``."""
        return AUDIO_FEATURES[self.audio_feature]

    @classmethod
    def from_dict(cls, d: dict | None) -> "SdganConfig":
        """Build from a ``model`` section; unknown keys (also in the nested sections) raise ``ValueError``."""
        d = dict(d or {})
        fd = dataclass_from_dict(FrameDiscriminatorConfig, d.pop("frame_discriminator", None), "model.frame_discriminator")
        sd = dataclass_from_dict(SequenceDiscriminatorConfig, d.pop("sequence_discriminator", None), "model.sequence_discriminator")
        return dataclass_from_dict(cls, {**d, "frame_discriminator": fd, "sequence_discriminator": sd}, "model")

    def to_dict(self) -> dict:
        return asdict(self)


def _width(base: int, cap: int, i: int) -> int:
    return min(int(base) * 2 ** i, int(cap))


def _rnn(rnn: nn.GRU, x: torch.Tensor, h: torch.Tensor | None):
    """A GRU in float32 (autocast off): ``x (B, T, in)`` → ``(B, T, hidden)`` float32, ``h``."""
    ctx = torch.autocast(x.device.type, enabled=False) if torch.is_autocast_enabled(x.device.type) else nullcontext()
    with ctx:
        return rnn(x.float(), None if h is None else h.float())


# ---------------------------------------------------------------------------------------- parts
class AudioEncoder(nn.Module):
    """Per-frame audio encoder: 5 conv + 2 FC layers on one MFCC window (Jain et al. §III.1; the
    layout of You Said That?'s audio encoder, their [1]).

    Layers (a = ``channels``): conv 3×3 a → pool 3×3 /(1, 2) → conv 2a → pool 3×3 /2 → conv 4a →
    conv 4a → conv 8a → pool 3×3 /2 → FC ``fc`` → FC ``code``. Each conv is followed by batch norm
    (``norm``) and ReLU (LeakyReLU(0.2) without ``norm``); fc6 by the same activation; fc7 is linear.

    Args:
        in_shape: ``(time sub-frames, coefficients)`` of one window (e.g. ``(35, 12)``).
        channels, fc, code: widths. norm: batch norm (generator) or none (discriminator).

    Forward:
        ``x (N, time, coefficients)`` float, standardised MFCC → ``(N, code)`` float.

    Raises:
        ValueError: an input window too small for the three poolings (at construction).
    """

    def __init__(self, in_shape: tuple[int, int], channels: int = 64, fc: int = 512, code: int = 256, norm: bool = True):
        super().__init__()
        a = int(channels)

        def block(cin: int, cout: int) -> list[nn.Module]:
            layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, 1, 1, bias=not norm)]
            layers += [nn.BatchNorm2d(cout), nn.ReLU(inplace=True)] if norm else [nn.LeakyReLU(0.2, inplace=True)]
            return layers

        self.in_shape = tuple(int(v) for v in in_shape)
        self.convs = nn.Sequential(
            *block(1, a), nn.MaxPool2d(3, stride=(1, 2)),
            *block(a, 2 * a), nn.MaxPool2d(3, stride=2),
            *block(2 * a, 4 * a), *block(4 * a, 4 * a), *block(4 * a, 8 * a), nn.MaxPool2d(3, stride=2),
        )
        with torch.no_grad():
            try:
                flat = self.convs.eval()(torch.zeros(1, 1, self.in_shape[1], self.in_shape[0])).numel()
            except RuntimeError as exc:
                raise ValueError(f"audio window {self.in_shape} is too small for the audio encoder's poolings") from exc
        self.convs.train()
        act = nn.ReLU(inplace=True) if norm else nn.LeakyReLU(0.2, inplace=True)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(flat, int(fc)), act, nn.Linear(int(fc), int(code)))
        self.code = int(code)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (N, time, coef) → (N, 1, coef, time): You Said That?'s 12 × 35 (coefficients × time) image
        return self.fc(self.convs(x.transpose(-1, -2).unsqueeze(1)))


class IdentityEncoder(nn.Module):
    """Image encoder: stride-2 convs down to 4 × 4, then a 4 × 4 conv to a code (Jain et al. §III.2;
    reference [2]'s layout — 6 layers at s = 128).

    Layer ``i`` (1 … ``n_down``): conv 4×4 /2, ``min(channels · 2^(i−1), max_channels)`` maps,
    batch norm (not after layer 1, as in DCGAN) + ReLU (``norm``) or LeakyReLU(0.2); last: conv 4×4 valid → ``code`` (+ ``tanh``
    when ``squash``).

    Args:
        size: input side s (a power of two >= 8). in_channels: 3 (RGB).
        channels, max_channels, code, norm, squash: as above.

    Forward:
        ``x (N, in_channels, s, s)`` float in [-1, 1] → ``(code (N, code), features)``, ``features``
        the ``n_down`` layer outputs, layer ``i`` ``(N, c_i, s / 2^i, s / 2^i)`` (the U-Net skips
        are the first ``skips`` of them).
    """

    def __init__(self, size: int, in_channels: int = 3, channels: int = 64, max_channels: int = 1024, code: int = 50,
                 norm: bool = True, squash: bool = True):
        super().__init__()
        self.n_down = int(math.log2(size)) - 2
        self.widths = [_width(channels, max_channels, i) for i in range(self.n_down)]
        layers, cin = [], in_channels
        for i, cout in enumerate(self.widths):
            seq = [nn.Conv2d(cin, cout, 4, 2, 1, bias=not (norm and i > 0))]
            if norm and i > 0:
                seq.append(nn.BatchNorm2d(cout))
            seq.append(nn.ReLU(inplace=True) if norm else nn.LeakyReLU(0.2, inplace=True))
            layers.append(nn.Sequential(*seq))
            cin = cout
        self.down = nn.ModuleList(layers)
        self.last = nn.Sequential(nn.Conv2d(cin, code, 4, 1, 0), *([nn.Tanh()] if squash else []))
        self.code = int(code)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        features = []
        for layer in self.down:
            x = layer(x)
            features.append(x)
        return self.last(x).flatten(1), features


class NoiseGenerator(nn.Module):
    """Sequential noise (Jain et al. §III.3): a ``layers``-layer GRU, ``dim`` → ``dim``, on i.i.d.
    ``N(0, std²)`` noise, output squashed by ``tanh`` (a2v, as reference [2]'s code).

    Forward:
        ``eps (B, T, dim)`` float (the drawn noise), ``h`` (``(layers, B, dim)`` or ``None``) →
        ``(n (B, T, dim) float32 in (−1, 1), h)``.
    """

    def __init__(self, dim: int = 10, layers: int = 2):
        super().__init__()
        self.rnn = nn.GRU(dim, dim, layers, batch_first=True)

    def forward(self, eps: torch.Tensor, h: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        out, h = _rnn(self.rnn, eps, h)
        return torch.tanh(out), h


class FrameDecoder(nn.Module):
    """U-Net decoder (Jain et al. §III.4): latent ``(N, latent)`` → frame ``(N, 3, s, s)``.

    A 4×4 transposed conv makes ``4 × 4`` maps of the encoder's deepest width; then at each
    resolution ``s / 2^i`` (``i = n_down … 1``): if ``i <= skips``, the identity encoder's layer-``i``
    output is concatenated and a 3×3 conv restores the width; a 4×4 /2 transposed conv doubles the
    resolution (to the width of encoder layer ``i − 1``, or to RGB + ``tanh`` at the end). Batch norm +
    ReLU after every layer but the last. At s = 128 with 4 skips: 6 transposed and 4 plain convs,
    alternating after the first two (§III.4).

    Args:
        size: s. latent: input size (audio + identity + noise). widths: the encoder's ``c_i``
            (:attr:`IdentityEncoder.widths`). skips: number of skips.

    Forward:
        ``z (N, latent)``, ``skips`` list of the encoder's first ``skips`` feature maps (each with
        ``N`` rows) → ``(N, 3, s, s)`` float in [-1, 1].

    Raises:
        ValueError: another number of skips than built for (at forward).
    """

    def __init__(self, size: int, latent: int, widths: list[int], skips: int = 4):
        super().__init__()
        n = len(widths)
        self.n_skips = int(skips)
        self.first = nn.Sequential(nn.ConvTranspose2d(latent, widths[-1], 4, 1, 0, bias=False), nn.BatchNorm2d(widths[-1]),
                                   nn.ReLU(inplace=True))
        self.mix = nn.ModuleDict()
        self.up = nn.ModuleList()
        for i in range(n, 0, -1):  # resolution s / 2^i, width widths[i-1]
            c = widths[i - 1]
            if i <= self.n_skips:
                self.mix[str(i)] = nn.Sequential(nn.Conv2d(2 * c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True))
            if i > 1:
                self.up.append(nn.Sequential(nn.ConvTranspose2d(c, widths[i - 2], 4, 2, 1, bias=False),
                                             nn.BatchNorm2d(widths[i - 2]), nn.ReLU(inplace=True)))
            else:
                self.up.append(nn.Sequential(nn.ConvTranspose2d(c, 3, 4, 2, 1), nn.Tanh()))
        self.n = n

    def forward(self, z: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        if len(skips) != self.n_skips:
            raise ValueError(f"FrameDecoder built for {self.n_skips} skips, got {len(skips)}")
        x = self.first(z[:, :, None, None])
        for k, i in enumerate(range(self.n, 0, -1)):
            if i <= self.n_skips:
                x = self.mix[str(i)](torch.cat([x, skips[i - 1].to(x.dtype)], dim=1))
            x = self.up[k](x)
        return x


# ---------------------------------------------------------------------------------------- generator
class SdganGenerator(nn.Module):
    """The generator (Jain et al. §III.1–4): reference still + audio sequence → video.

    Submodules: ``audio_encoder`` (:class:`AudioEncoder`), ``audio_rnn`` (GRU, ``rnn_layers``
    layers, ``audio_code`` → ``audio_rnn``), ``identity_encoder`` (:class:`IdentityEncoder`),
    ``noise`` (:class:`NoiseGenerator`), ``decoder`` (:class:`FrameDecoder` on
    ``audio_rnn + id_code + noise_dim`` latents).

    The recurrent state is ``(h_audio, h_noise)``: passing the state returned for frames
    ``0 … t−1`` with frames ``t …`` gives the same frames as one pass over the whole sequence, so
    any length can be generated in chunks (:meth:`a2v.recipes.sdgan.SdganRecipe.generate`).
    """

    def __init__(self, cfg: SdganConfig):
        super().__init__()
        self.cfg = cfg
        self.audio_encoder = AudioEncoder(cfg.audio_shape, cfg.audio_channels, cfg.audio_fc, cfg.audio_code)
        self.audio_rnn = nn.GRU(cfg.audio_code, cfg.audio_rnn, cfg.rnn_layers, batch_first=True)
        self.identity_encoder = IdentityEncoder(cfg.size, 3, cfg.id_channels, cfg.max_channels, cfg.id_code)
        self.noise = NoiseGenerator(cfg.noise_dim, cfg.rnn_layers)
        self.decoder = FrameDecoder(cfg.size, cfg.audio_rnn + cfg.id_code + cfg.noise_dim, self.identity_encoder.widths, cfg.skips)

    def encode_reference(self, reference: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``reference (B, 3, s, s)`` in [-1, 1] → identity code ``(B, id_code)`` in (−1, 1) and the
        ``skips`` U-Net feature maps (layer ``i``: ``(B, c_i, s / 2^i, s / 2^i)``)."""
        code, features = self.identity_encoder(reference)
        return code, features[: self.cfg.skips]

    def draw_noise(self, batch: int, frames: int, device: torch.device | str = "cpu", generator: torch.Generator | None = None) -> torch.Tensor:
        """i.i.d. ``N(0, noise_std²)`` noise ``(batch, frames, noise_dim)`` float32 (§III.3), from
        ``generator`` (CPU) when given, else torch's global RNG."""
        eps = torch.randn(batch, frames, self.cfg.noise_dim, generator=generator,
                          device="cpu" if generator is not None else device)
        return (eps * float(self.cfg.noise_std)).to(device)

    def decode_sequence(self, code: torch.Tensor, skips: list[torch.Tensor], audio: torch.Tensor, eps: torch.Tensor,
                        state: tuple[torch.Tensor, torch.Tensor] | None = None):
        """Frames of one chunk of a sequence.

        Args:
            code, skips: :meth:`encode_reference` of ``B`` references.
            audio: ``(B, T, time, coefficients)`` standardised MFCC windows.
            eps: ``(B, T, noise_dim)`` drawn noise (:meth:`draw_noise`).
            state: the ``(h_audio, h_noise)`` returned for the previous chunk, or ``None`` at frame 0.

        Returns:
            ``frames (B, T, 3, s, s)`` in [-1, 1] and the state after the chunk.

        Raises:
            ValueError: batch or length mismatches between ``audio``, ``eps`` and ``code``.
        """
        B, T = audio.shape[:2]
        if eps.shape[:2] != (B, T) or code.shape[0] != B:
            raise ValueError(f"audio {tuple(audio.shape)}, noise {tuple(eps.shape)} and code {tuple(code.shape)} disagree on (B, T)")
        h_audio, h_noise = state if state is not None else (None, None)
        per_frame = self.audio_encoder(audio.flatten(0, 1)).view(B, T, -1)
        a, h_audio = _rnn(self.audio_rnn, per_frame, h_audio)
        n, h_noise = self.noise(eps, h_noise)
        z = torch.cat([a, code.float().unsqueeze(1).expand(-1, T, -1), n], dim=2).flatten(0, 1)
        rep = [f.unsqueeze(1).expand(-1, T, -1, -1, -1).flatten(0, 1) for f in skips]
        frames = self.decoder(z, rep)
        return frames.view(B, T, *frames.shape[1:]), (h_audio, h_noise)

    def forward(self, reference: torch.Tensor, audio: torch.Tensor, eps: torch.Tensor | None = None,
                state: tuple[torch.Tensor, torch.Tensor] | None = None):
        """``reference (B, 3, s, s)``, ``audio (B, T, time, coefficients)`` [, ``eps (B, T, noise_dim)``,
        ``state``] → ``(frames (B, T, 3, s, s) in [-1, 1], state)``; noise from torch's global RNG
        when ``eps`` is ``None``."""
        if eps is None:
            eps = self.draw_noise(audio.shape[0], audio.shape[1], audio.device)
        code, skips = self.encode_reference(reference)
        return self.decode_sequence(code, skips, audio, eps, state)


# ---------------------------------------------------------------------------------------- discriminators
class FrameDiscriminator(nn.Module):
    """Frame discriminator (Jain et al. §III.5): frame + reference still → one logit.

    Layers: ``n_layers`` × (conv 3×3 doubling from ``base_channels`` up to ``max_channels`` →
    LeakyReLU(0.2) → 2×2 average pooling), FC ``hidden`` → LeakyReLU(0.2) → FC 1 (4 + 2 = the
    paper's 6 layers).

    Args:
        size: s. cfg: :class:`FrameDiscriminatorConfig`.

    Forward:
        ``frame (N, 3, s, s)``, ``reference (N, 3, s, s)`` in [-1, 1] → logits ``(N, 1)``.
    """

    def __init__(self, size: int, cfg: FrameDiscriminatorConfig):
        super().__init__()
        layers, cin = [], 6
        for i in range(cfg.n_layers):
            cout = _width(cfg.base_channels, cfg.max_channels, i)
            layers += [nn.Conv2d(cin, cout, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True), nn.AvgPool2d(2)]
            cin = cout
        side = size // 2 ** cfg.n_layers
        self.convs = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(cin * side * side, cfg.hidden), nn.LeakyReLU(0.2, inplace=True),
                                  nn.Linear(cfg.hidden, 1))

    def forward(self, frame: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        return self.head(self.convs(torch.cat([frame, reference], dim=1)))


class SequenceDiscriminator(nn.Module):
    """Audio-conditioned sequence discriminator with 1-D pyramid pooling (Jain et al. §III.6).

    Per frame: an image encoder (:class:`IdentityEncoder` layout, no normalisation, LeakyReLU) →
    ``frame_code``, and an audio encoder (:class:`AudioEncoder`, own weights, no normalisation) →
    ``audio_code``; concatenated, a ``rnn_layers``-layer GRU runs over the frames; its outputs are
    pooled over time by :class:`~a2v.models.spp.TemporalPyramidPool` into a fixed
    ``rnn_hidden · sum(levels)`` vector whatever ``T``; FC ``hidden`` → LeakyReLU(0.2) → FC 1.

    Args:
        size: s. audio_shape: ``(time, coefficients)`` of the audio windows. cfg:
            :class:`SequenceDiscriminatorConfig`.

    Forward:
        ``frames (B, T, 3, s, s)`` in [-1, 1], ``audio (B, T, time, coefficients)`` standardised MFCC,
        any ``T >= 1`` → dict: ``logits (B, 1)``, ``pooled (B, rnn_hidden · sum(levels))``,
        ``sequence (B, T, rnn_hidden)`` (the GRU outputs).

    Raises:
        ValueError: frames and audio of different ``(B, T)``.
    """

    def __init__(self, size: int, audio_shape: tuple[int, int], cfg: SequenceDiscriminatorConfig):
        super().__init__()
        self.frame_encoder = IdentityEncoder(size, 3, cfg.frame_channels, cfg.max_channels, cfg.frame_code, norm=False, squash=False)
        self.audio_encoder = AudioEncoder(audio_shape, cfg.audio_channels, cfg.audio_fc, cfg.audio_code, norm=False)
        self.rnn = nn.GRU(cfg.frame_code + cfg.audio_code, cfg.rnn_hidden, cfg.rnn_layers, batch_first=True)
        self.spp = TemporalPyramidPool(cfg.levels, cfg.pool)
        self.head = nn.Sequential(nn.Linear(self.spp.out_features(cfg.rnn_hidden), cfg.hidden), nn.LeakyReLU(0.2, inplace=True),
                                  nn.Linear(cfg.hidden, 1))

    def forward(self, frames: torch.Tensor, audio: torch.Tensor) -> dict[str, torch.Tensor]:
        B, T = frames.shape[:2]
        if tuple(audio.shape[:2]) != (B, T):
            raise ValueError(f"frames {tuple(frames.shape)} and audio {tuple(audio.shape)} disagree on (B, T)")
        f, _ = self.frame_encoder(frames.flatten(0, 1))
        a = self.audio_encoder(audio.flatten(0, 1))
        seq, _ = _rnn(self.rnn, torch.cat([f.float(), a.float()], dim=1).view(B, T, -1), None)
        pooled = self.spp(seq)
        return {"logits": self.head(pooled), "pooled": pooled, "sequence": seq}


__all__ = ["AUDIO_FEATURES", "AudioEncoder", "FrameDecoder", "FrameDiscriminator", "FrameDiscriminatorConfig", "IdentityEncoder",
           "NoiseGenerator", "SdganConfig", "SdganGenerator", "SequenceDiscriminator", "SequenceDiscriminatorConfig"]
