"""CRAN's networks — Song et al., *Talking Face Generation by Conditional Recurrent Adversarial
Network* (IJCAI 2019): audio encoder ``E_A``, image encoder ``E_I``, recurrent unit ``R_E`` (GRU),
image decoder ``G`` with U-Net skips, multi-task discriminator ``D``.

Layer by layer as the paper's appendix tables ("SAME" padding as TensorFlow computes it, so the
sizes are the tables' at any input side; ``c``, ``a``, ``d`` are the configured widths, 64, 64 and
16 in the paper; ``S`` is the image side, 112 in the paper, ``s = S / 16``):

* ``E_A`` (Table 5), on the 35×12 MFCC map of one frame (§3.2, "Audio Feature Discussion"):
  ``(N, 1, 12, 35)`` → conv3 a, conv3 2a, maxpool3 stride (1, 2) → 12×18, conv3 4a, conv3 4a,
  conv3 8a, maxpool3 stride 2 → 6×9, FC ``hidden``, FC ``code_dim`` = ``z^A``. Every conv and the
  first FC: BN, ReLU.
* ``E_I`` (Table 6), on the reference face: conv5/2 c, 2c, 4c, 8c (BN, ReLU) → ``(8c, s, s)``,
  FC ``hidden`` (BN, ReLU), FC ``code_dim`` = ``z^I``; the first three conv outputs are the U-Net
  skips (§3.1: U-Net [20] keeps the identity).
* ``R_E`` (§3.2, Fig. 2; §4.2 "GRU with orthogonalized initialization"): a GRU over the hybrid
  codes ``z̃_k = [z^A_k, z^I]``.
* ``G`` (Table 7): FC ``s·s·8c`` (BN, ReLU, 25088 = 7·7·512 in the paper), deconv5/2 4c ⊕ skip 4c,
  deconv5/2 2c ⊕ skip 2c, deconv5/2 c ⊕ skip c, deconv5/2 c/2 (each BN, ReLU), deconv5/1 3, tanh.
* ``D`` (Table 8, §3.2 "Multi-task Discriminator"): conv4/2 d, 2d, 4d, 8d (BN, ReLU) shared by
  both heads; image-aware head (Output1) conv4/1 → ``(1, s, s)`` patch logits (Pix2pix [6]);
  matching-aware head: conv4/2 16d (BN, ReLU) → ``⌈s/2⌉²`` ⊕ ``z^A`` tiled, conv1 8d (BN, ReLU),
  conv "VALID" over the whole map → one logit (Output2).

Choices the paper leaves open, marked ``a2v:`` where they are made:

* a2v: the GRU has ``gru_layers`` (1) layer(s) of ``2 · code_dim`` units — the width of the hybrid
  code, so the decoder reads the GRU's output (RAE) or the hybrid code itself (CAE, the GRU
  bypassed) through the same first layer and the RAE phase fine-tunes the CAE's decoder (§4.2).
* a2v: orthogonal initialisation of every gate block of the GRU's input and recurrent matrices,
  zero biases (§4.2 says "orthogonalized initialization" only).
* a2v: the output layer of ``G`` is a stride-1 deconvolution (Table 7's default stride 2 would
  double the size past the table's own ``112 × 112 × 3``); ``G``'s fifth deconvolution has
  ``c / 2`` channels (32 in the table).
* a2v: ``D``'s Output2 kernel is the whole map of its layer 6 (4×4 at 112², Table 8's default
  kernel 4 with "VALID"); at other sizes it stays the whole map, so the head gives one logit.
* a2v: ``D``'s input is the frame alone (Table 8's ``c`` = 3 channels): Eqs. 2–3 write ``D(I)``
  and ``D(I, z)``, not conditioned on the reference face.

Tensors: images are float32 RGB in [-1, 1], channels first; MFCC maps are the shard's
``mfcc_cran`` ``(…, 35, 12)`` (35 sub-frames × coefficients c1–c12), standardised per coefficient
by the recipe (:mod:`a2v.recipes.cran`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from a2v.settings import dataclass_from_dict

MFCC_SHAPE = (35, 12)
"""Per-frame shape of the shard's ``mfcc_cran``: 35 sub-frames (10 ms hop, 350 ms) × c1–c12."""


@dataclass
class CranDiscriminatorConfig:
    """``model.discriminator`` of CRAN (Table 8).

    Attributes:
        base_channels: ``d``, width of the first conv (16 in Table 8; then 2d, 4d, 8d, 16d, 8d).
    """

    base_channels: int = 16

    def __post_init__(self):
        if int(self.base_channels) < 1:
            raise ValueError(f"model.discriminator.base_channels must be >= 1, got {self.base_channels}")


@dataclass
class CranConfig:
    """CRAN's ``model`` section.

    Attributes:
        image_size: ``S``, side of the faces in pixels (112, §4.2); a multiple of 16.
        audio_channels: ``a``, width of ``E_A``'s first conv (64, Table 5; then 2a, 4a, 4a, 8a).
        image_channels: ``c``, width of ``E_I``'s first conv (64, Table 6; ``G`` mirrors it, Table 7).
        hidden: width of the FC layer before each code (512, Tables 5–6).
        code_dim: size of ``z^A`` and ``z^I`` (256, Tables 5–6).
        gru_layers: stacked GRU layers of ``R_E`` (a2v: 1; the paper does not say).
        discriminator: :class:`CranDiscriminatorConfig`.

    Raises:
        ValueError: a size that is not a positive multiple of 16, a width < 1, an odd ``image_channels``
            (``G``'s fifth deconvolution has ``c / 2``), unknown discriminator keys.
    """

    image_size: int = 112
    audio_channels: int = 64
    image_channels: int = 64
    hidden: int = 512
    code_dim: int = 256
    gru_layers: int = 1
    discriminator: CranDiscriminatorConfig = field(default_factory=CranDiscriminatorConfig)

    def __post_init__(self):
        if isinstance(self.discriminator, dict) or self.discriminator is None:
            self.discriminator = dataclass_from_dict(CranDiscriminatorConfig, self.discriminator, "model.discriminator")
        if int(self.image_size) < 16 or int(self.image_size) % 16:
            raise ValueError(f"model.image_size must be a positive multiple of 16 (four stride-2 layers), got {self.image_size}")
        for name in ("audio_channels", "image_channels", "hidden", "code_dim", "gru_layers"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        if int(self.image_channels) % 2:
            raise ValueError(f"model.image_channels must be even (the decoder's last block has half of it), got {self.image_channels}")

    @classmethod
    def from_dict(cls, d: dict | None) -> "CranConfig":
        """Build from the ``model`` section; unknown keys (also in ``discriminator``) raise ``ValueError``."""
        return dataclass_from_dict(cls, d, "model")

    def to_dict(self) -> dict:
        """Plain dict (checkpoints, report)."""
        return asdict(self)


def _same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "SAME" padding (before, after) of one axis: output ``ceil(size / stride)``."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow "SAME" padding (computed per input size, extra pixel after),
    so ``(N, C, H, W)`` → ``(N, C', ⌈H / s⌉, ⌈W / s⌉)`` as the paper's tables give them."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int | tuple[int, int] = 1):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        top, bottom = _same_pads(x.shape[-2], kh, sh)
        left, right = _same_pads(x.shape[-1], kw, sw)
        return super().forward(F.pad(x, (left, right, top, bottom)))


def _conv_bn_relu(cin: int, cout: int, kernel: int, stride) -> nn.Sequential:
    return nn.Sequential(SameConv2d(cin, cout, kernel, stride), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _deconv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    """Deconv 5×5, stride 2, "SAME": ``(N, cin, h, w)`` → ``(N, cout, 2h, 2w)``, BN, ReLU (Table 7)."""
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 5, 2, padding=2, output_padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class AudioEncoder(nn.Module):
    """``E_A`` (Table 5): one frame's MFCC map → ``z^A``.

    Forward:
        ``mfcc (N, 35, 12)`` float32, standardised MFCC c1–c12 × 35 sub-frames (the shard's layout;
        transposed here to the table's 12 × 35 input) → ``(N, code_dim)`` float32.

    Raises:
        ValueError: another input shape.
    """

    def __init__(self, channels: int = 64, hidden: int = 512, code_dim: int = 256):
        super().__init__()
        a = channels
        self.convs = nn.Sequential(
            _conv_bn_relu(1, a, 3, 1), _conv_bn_relu(a, 2 * a, 3, 1),
            nn.MaxPool2d(3, stride=(1, 2), padding=1),                       # 12×35 → 12×18
            _conv_bn_relu(2 * a, 4 * a, 3, 1), _conv_bn_relu(4 * a, 4 * a, 3, 1), _conv_bn_relu(4 * a, 8 * a, 3, 1),
            nn.MaxPool2d(3, stride=2, padding=1),                            # 12×18 → 6×9
        )
        self.fc = nn.Sequential(nn.Linear(8 * a * 6 * 9, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                                nn.Linear(hidden, code_dim))

    def forward(self, mfcc: torch.Tensor) -> torch.Tensor:
        if mfcc.ndim != 3 or tuple(mfcc.shape[1:]) != MFCC_SHAPE:
            raise ValueError(f"E_A expects MFCC maps (N, {MFCC_SHAPE[0]}, {MFCC_SHAPE[1]}), got {tuple(mfcc.shape)}")
        x = self.convs(mfcc.transpose(1, 2).unsqueeze(1))                    # (N, 1, 12, 35)
        return self.fc(x.flatten(1))


class ImageEncoder(nn.Module):
    """``E_I`` (Table 6, ``c`` = 1 reference image, §4.2): reference face → ``z^I`` and U-Net skips.

    Forward:
        ``reference (B, 3, S, S)`` float32 in [-1, 1] → ``(z_i (B, code_dim), skips)``, ``skips``
        the first three conv outputs ``[(B, c, S/2, S/2), (B, 2c, S/4, S/4), (B, 4c, S/8, S/8)]``.
    """

    def __init__(self, image_size: int = 112, channels: int = 64, hidden: int = 512, code_dim: int = 256):
        super().__init__()
        c = channels
        self.blocks = nn.ModuleList([_conv_bn_relu(3, c, 5, 2), _conv_bn_relu(c, 2 * c, 5, 2),
                                     _conv_bn_relu(2 * c, 4 * c, 5, 2), _conv_bn_relu(4 * c, 8 * c, 5, 2)])
        s = image_size // 16
        self.fc = nn.Sequential(nn.Linear(8 * c * s * s, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                                nn.Linear(hidden, code_dim))

    def forward(self, reference: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        skips, x = [], reference
        for block in self.blocks:
            x = block(x)
            skips.append(x)
        return self.fc(x.flatten(1)), skips[:3]


class ImageDecoder(nn.Module):
    """``G`` (Table 7) with U-Net skips from ``E_I``.

    Forward:
        ``code (N, 2·code_dim)`` (GRU output or hybrid code), ``skips`` as :class:`ImageEncoder`
        gives them, each with N rows → ``(N, 3, S, S)`` float32 in [-1, 1] (tanh).
    """

    def __init__(self, image_size: int = 112, channels: int = 64, code_dim: int = 256):
        super().__init__()
        c, self.s = channels, image_size // 16
        self.fc = nn.Sequential(nn.Linear(2 * code_dim, 8 * c * self.s * self.s), nn.BatchNorm1d(8 * c * self.s * self.s),
                                nn.ReLU(inplace=True))
        self.up = nn.ModuleList([_deconv_bn_relu(8 * c, 4 * c), _deconv_bn_relu(8 * c, 2 * c), _deconv_bn_relu(4 * c, c),
                                 _deconv_bn_relu(2 * c, c // 2)])
        self.out = nn.ConvTranspose2d(c // 2, 3, 5, 1, padding=2)

    def forward(self, code: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        x = self.fc(code).view(code.shape[0], -1, self.s, self.s)
        for up, skip in zip(self.up, [*reversed(skips), None]):
            x = up(x)
            if skip is not None:
                x = torch.cat([x, skip], dim=1)
        return torch.tanh(self.out(x))


def orthogonal_gru_(gru: nn.GRU) -> nn.GRU:
    """Orthogonal initialisation of ``gru`` (§4.2; a2v: each of the three gate blocks of every
    ``weight_ih`` / ``weight_hh`` separately, biases 0). Returns ``gru``."""
    with torch.no_grad():
        for name, p in gru.named_parameters():
            if name.startswith("weight"):
                for block in p.chunk(3, dim=0):
                    nn.init.orthogonal_(block)
            else:
                p.zero_()
    return gru


class CranGenerator(nn.Module):
    """CRAN's generator: ``E_A``, ``E_I``, ``R_E`` (GRU), ``G`` (§3.2, Fig. 2).

    The buffer ``recurrent`` (saved in checkpoints) says whether the GRU runs (RAE) or is bypassed
    (CAE, the Speech2Vid baseline of §3.1, frames independent); the recipe's phases set it
    (:attr:`a2v.recipes.cran` phase key ``recurrent``), so a checkpoint generates as it was trained.

    Forward:
        ``reference (B, 3, S, S)`` float32 in [-1, 1]; ``mfcc (B, T, 35, 12)`` standardised;
        ``hidden`` ``(gru_layers, B, 2·code_dim)`` or ``None`` (zeros) → ``(frames (B, T, 3, S, S)``
        in [-1, 1], ``z_a (B, T, code_dim)``, ``hidden``: the GRU state after frame T−1, ``None``
        when not recurrent``)``. Any T >= 1.

    Raises:
        ValueError: mismatched batch sizes or shapes.
    """

    def __init__(self, cfg: CranConfig):
        super().__init__()
        self.cfg = cfg
        self.audio_encoder = AudioEncoder(cfg.audio_channels, cfg.hidden, cfg.code_dim)
        self.image_encoder = ImageEncoder(cfg.image_size, cfg.image_channels, cfg.hidden, cfg.code_dim)
        self.gru = orthogonal_gru_(nn.GRU(2 * cfg.code_dim, 2 * cfg.code_dim, cfg.gru_layers, batch_first=True))
        self.decoder = ImageDecoder(cfg.image_size, cfg.image_channels, cfg.code_dim)
        self.register_buffer("recurrent_flag", torch.tensor(True))

    @property
    def recurrent(self) -> bool:
        """Whether the GRU runs (RAE) or is bypassed (CAE)."""
        return bool(self.recurrent_flag)

    def set_recurrent(self, on: bool) -> None:
        """Run the GRU (``True``, RAE) or bypass it (``False``, CAE)."""
        self.recurrent_flag.fill_(bool(on))

    def forward(self, reference: torch.Tensor, mfcc: torch.Tensor, hidden: torch.Tensor | None = None):
        z_i, skips = self.image_encoder(reference)
        return self.sequence(z_i, skips, mfcc, hidden)

    def sequence(self, z_i: torch.Tensor, skips: list[torch.Tensor], mfcc: torch.Tensor, hidden: torch.Tensor | None = None):
        """Frames for ``mfcc (B, T, 35, 12)`` from an encoded reference (``z_i (B, code_dim)``,
        ``skips`` of :class:`ImageEncoder`), continuing the GRU from ``hidden``; returns what
        :meth:`forward` returns. Generation calls it chunk by chunk with the same reference code."""
        if mfcc.ndim != 4 or mfcc.shape[0] != z_i.shape[0]:
            raise ValueError(f"mfcc must be (B, T, 35, 12) with B = {z_i.shape[0]}, got {tuple(mfcc.shape)}")
        B, T = mfcc.shape[:2]
        z_a = self.audio_encoder(mfcc.flatten(0, 1)).view(B, T, -1)
        hybrid = torch.cat([z_a, z_i.unsqueeze(1).expand(-1, T, -1)], dim=-1)  # z̃_k = {z^A_k, z^I}
        if self.recurrent:
            codes, hidden = self.gru(hybrid, hidden)
        else:
            codes, hidden = hybrid, None
        rows = [s.unsqueeze(1).expand(-1, T, -1, -1, -1).flatten(0, 1) for s in skips]
        frames = self.decoder(codes.flatten(0, 1), rows)
        return frames.view(B, T, *frames.shape[1:]), z_a, hidden


class CranDiscriminator(nn.Module):
    """CRAN's multi-task discriminator (Table 8; §3.2, Eqs. 2–3): shared lower layers, an
    image-aware PatchGAN head and a matching-aware (frame, audio code) head.

    Forward:
        ``frames (N, 3, S, S)`` float32 in [-1, 1]; ``audio_code (N, code_dim)`` or ``None`` →
        dict with ``image_logits (N, 1, S/16, S/16)`` (Output1) and, when a code is given,
        ``match_logits (N,)`` (Output2). Logits are unbounded (sigmoid = probability of real /
        of a matched pair). For several codes of the same frames call :meth:`trunk` once, then
        :meth:`image_head` / :meth:`match_head`.
    """

    def __init__(self, image_size: int = 112, base_channels: int = 16, code_dim: int = 256):
        super().__init__()
        d = base_channels
        self.trunk = nn.Sequential(_conv_bn_relu(3, d, 4, 2), _conv_bn_relu(d, 2 * d, 4, 2),
                                   _conv_bn_relu(2 * d, 4 * d, 4, 2), _conv_bn_relu(4 * d, 8 * d, 4, 2))
        self.image_out = SameConv2d(8 * d, 1, 4, 1)
        self.match_down = _conv_bn_relu(8 * d, 16 * d, 4, 2)
        self.match_mix = nn.Sequential(nn.Conv2d(16 * d + code_dim, 8 * d, 1), nn.BatchNorm2d(8 * d), nn.ReLU(inplace=True))
        k = math.ceil(image_size / 32)  # a2v: Output2 covers the whole map (4×4 at 112², Table 8)
        self.match_out = nn.Conv2d(8 * d, 1, k)

    def image_head(self, h: torch.Tensor) -> torch.Tensor:
        """Output1: trunk features ``(N, 8d, S/16, S/16)`` → patch logits ``(N, 1, S/16, S/16)``."""
        return self.image_out(h)

    def match_head(self, h: torch.Tensor, audio_code: torch.Tensor) -> torch.Tensor:
        """Output2: trunk features ``(N, 8d, S/16, S/16)`` + ``audio_code (N, code_dim)`` → ``(N,)`` logits."""
        x = self.match_down(h)
        code = audio_code[:, :, None, None].expand(-1, -1, *x.shape[-2:])
        return self.match_out(self.match_mix(torch.cat([x, code], dim=1))).flatten()

    def forward(self, frames: torch.Tensor, audio_code: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if frames.ndim != 4 or frames.shape[1] != 3:
            raise ValueError(f"D expects frames (N, 3, S, S), got {tuple(frames.shape)}")
        h = self.trunk(frames)
        out = {"image_logits": self.image_head(h)}
        if audio_code is not None:
            out["match_logits"] = self.match_head(h, audio_code)
        return out


def build_cran(cfg: CranConfig) -> dict[str, nn.Module]:
    """``{"generator": CranGenerator, "discriminator": CranDiscriminator}``, fresh, on the CPU."""
    return {"generator": CranGenerator(cfg),
            "discriminator": CranDiscriminator(cfg.image_size, cfg.discriminator.base_channels, cfg.code_dim)}


__all__ = ["AudioEncoder", "CranConfig", "CranDiscriminator", "CranDiscriminatorConfig", "CranGenerator", "ImageDecoder",
           "ImageEncoder", "MFCC_SHAPE", "SameConv2d", "build_cran", "orthogonal_gru_"]
