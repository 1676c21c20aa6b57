"""Building blocks of the MAN generator: spectral-norm convs, γ/β extractors, MAN block, CAM layer.

Paper: Kumar et al., *Multi Modal Adaptive Normalization for Audio to Video Generation*
(``docs/papers/man_multi_modal_adaptive_normalization.md``), §3.0.1 Eq. 1–2, supp. §1.1,
supp. Figs. 2, 5, 6, 7.

Conventions: feature maps are ``(B, C, H, W)`` float tensors; audio feature vectors are
``(B, F)`` float tensors. Every module is device-agnostic (move it with ``.to(device)``).

a2v choices (the paper is silent or vague):

* **Residual affine form.** Each modality contributes ``x_norm · (1 + γ_m) + β_m`` instead of
  ``γ_m · x_norm + β_m`` (SPADE's form), so a MAN block starts close to the identity.
  Because Σ ρ_m = 1 this equals ``x_norm · (1 + Σ ρ_m γ_m) + Σ ρ_m β_m``, which is how it is
  computed.
* **Spectral norm** goes on the generator's main convolutions (supp. §1.1, "all the convolution
  layers in the generator in Figure 1"); the small γ/β prediction nets (supp. Figs. 5–6) are
  plain by default, as in SPADE (``spectral=True`` adds it).
* **Parameter-free normalisation** is ``BatchNorm2d(affine=False)`` (the paper uses synchronized
  BatchNorm; for multi-GPU runs convert with ``torch.nn.SyncBatchNorm.convert_sync_batchnorm``).
* **Partial convolution** (``"partial_conv2d"``, Liu et al. 2018; MAN Table 2): the image
  modality is fully valid (so it acts as partial-convolution-based padding); for the motion
  modality (flow, heatmaps) the holes are the pixels where every channel is ~0
  (:func:`a2v.models.partial_conv.validity_mask`), and γ/β are 0 where no valid pixel is near.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from a2v.models.partial_conv import PartialConv2d, validity_mask

VIDEO_BRANCHES = ("conv2d", "partial_conv2d", "conv2d_eca")
"""Supported γ/β extractors for spatial (video) modalities."""

AUDIO_BRANCHES = ("conv1d", "lstm")
"""Supported γ/β extractors for vector (audio) modalities."""


def sn_conv2d(
    in_channels: int,
    out_channels: int,
    kernel_size: int = 3,
    stride: int = 1,
    padding: int | None = None,
    bias: bool = True,
) -> nn.Module:
    """A ``Conv2d`` with spectral normalisation (Miyato et al. 2018) on its weight.

    Args:
        in_channels, out_channels: channel counts.
        kernel_size: square kernel size.
        stride: stride.
        padding: zero padding; ``None`` → ``kernel_size // 2`` ("same" for odd kernels at stride 1).
        bias: whether the conv has a bias.

    Returns:
        The parametrized conv (``torch.nn.utils.parametrizations.spectral_norm``).
    """
    if padding is None:
        padding = kernel_size // 2
    return spectral_norm(nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=bias))


def _maybe_sn(module: nn.Module, spectral: bool) -> nn.Module:
    return spectral_norm(module) if spectral else module


def resize_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a ``(B, C, H, W)`` map to ``size`` (H, W): area averaging when shrinking, bilinear when growing.

    Returns ``x`` itself when it already has that size.
    """
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if x.shape[-2] >= size[0] and x.shape[-1] >= size[1]:
        return F.interpolate(x, size=size, mode="area")
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class ECA(nn.Module):
    """Efficient Channel Attention (Wang et al., ECA-Net, CVPR 2020).

    Global average pool → 1-D conv across channels (kernel size adaptive to the channel count,
    ``k = |log2(C)/2 + 1/2|`` rounded to the next odd number) → sigmoid → channel re-weighting.

    Shapes: ``(B, C, H, W) → (B, C, H, W)``.
    """

    def __init__(self, channels: int, gamma: float = 2.0, b: float = 1.0):
        super().__init__()
        k = int(abs(math.log2(channels) / gamma + b / gamma))
        k = k if k % 2 else k + 1
        self.conv = nn.Conv1d(1, 1, kernel_size=k, padding=k // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.mean(dim=(2, 3))  # (B, C)
        y = self.conv(y.unsqueeze(1)).squeeze(1)  # (B, C)
        return x * torch.sigmoid(y)[:, :, None, None]


class VideoAffine2D(nn.Module):
    """γ/β maps from a spatial modality (image, optical flow, keypoint heatmaps) — MAN supp. Fig. 5.

    ``cond`` is resized to the normalised feature map's size, then
    ``conv3×3 → ReLU [→ ECA] → {conv3×3 → γ, conv3×3 → β}``; with ``"partial_conv2d"`` every
    conv is a :class:`~a2v.models.partial_conv.PartialConv2d` and the mask travels with it.

    Args:
        in_channels: channels of the modality input (3 image, 2 flow, 15 heatmaps).
        norm_channels: channels C of the feature map being modulated.
        hidden: channels of the shared hidden layer.
        variant: ``"conv2d"``, ``"partial_conv2d"`` or ``"conv2d_eca"`` (MAN Table 2); anything
            else → ``ValueError``.
        spectral: spectral norm on the convs.
        sparse: for ``"partial_conv2d"``: the holes are where ``cond`` is ~0 in every channel
            (motion inputs); ``False`` → every pixel valid (the image).

    Forward:
        ``cond (B, in_channels, h, w)``, ``size (H, W)`` → ``(γ, β)`` each ``(B, C, H, W)``.
    """

    def __init__(
        self,
        in_channels: int,
        norm_channels: int,
        hidden: int = 128,
        variant: str = "conv2d_eca",
        spectral: bool = False,
        sparse: bool = False,
    ):
        super().__init__()
        if variant not in VIDEO_BRANCHES:
            raise ValueError(f"unknown video branch {variant!r}; supported: {', '.join(VIDEO_BRANCHES)}")
        self.variant = variant
        self.sparse = sparse
        conv = PartialConv2d if variant == "partial_conv2d" else nn.Conv2d
        self.shared = _maybe_sn(conv(in_channels, hidden, 3, padding=1), spectral)
        self.eca = ECA(hidden) if variant == "conv2d_eca" else nn.Identity()
        self.gamma = _maybe_sn(conv(hidden, norm_channels, 3, padding=1), spectral)
        self.beta = _maybe_sn(conv(hidden, norm_channels, 3, padding=1), spectral)

    def forward(self, cond: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        cond = resize_to(cond, size)
        if self.variant == "partial_conv2d":
            mask = validity_mask(cond) if self.sparse else None
            h, mask = self.shared(cond, mask)
            h = F.relu(h)
            return self.gamma(h, mask)[0], self.beta(h, mask)[0]
        h = self.eca(F.relu(self.shared(cond)))
        return self.gamma(h), self.beta(h)


class AudioAffine1D(nn.Module):
    """Channel-wise γ/β vectors from an audio feature vector (mel, one-hot pitch/energy) — MAN supp. Fig. 6.

    Variants (MAN Table 2):

    * ``"conv1d"``: the ``F`` features are a 1-channel sequence → ``Conv1d(k5,s2) → ReLU →
      Conv1d(k5,s2) → ReLU → AdaptiveAvgPool1d(8) → Linear → (γ, β)``. Pooling to 8 cells (not
      to 1) keeps where along the feature axis the energy is, which a one-hot code needs.
    * ``"lstm"``: the features are cut into ``chunk`` -long pieces (zero-padded) read in order by
      an LSTM; its last hidden state → ``Linear → (γ, β)``.

    Args:
        in_features: F (256 for mel and for the one-hot codes).
        norm_channels: C, channels of the modulated feature map.
        hidden: conv channels / LSTM hidden size.
        variant: ``"conv1d"`` or ``"lstm"``.
        chunk: LSTM input size (features per step).
        spectral: spectral norm on the conv / linear layers.

    Forward:
        ``feat (B, F)`` → ``(γ, β)`` each ``(B, C, 1, 1)`` (broadcast over H, W).
    """

    def __init__(self, in_features: int, norm_channels: int, hidden: int = 64, variant: str = "lstm", chunk: int = 16, spectral: bool = False):
        super().__init__()
        if variant not in AUDIO_BRANCHES:
            raise ValueError(f"unknown audio branch {variant!r}; supported: {', '.join(AUDIO_BRANCHES)}")
        self.variant = variant
        self.in_features = in_features
        self.norm_channels = norm_channels
        if variant == "conv1d":
            self.net = nn.Sequential(
                _maybe_sn(nn.Conv1d(1, hidden, 5, stride=2, padding=2), spectral),
                nn.ReLU(inplace=True),
                _maybe_sn(nn.Conv1d(hidden, hidden, 5, stride=2, padding=2), spectral),
                nn.ReLU(inplace=True),
                nn.AdaptiveAvgPool1d(8),
                nn.Flatten(),
            )
            out_in = hidden * 8
        else:
            self.chunk = chunk
            self.steps = -(-in_features // chunk)
            self.net = nn.LSTM(chunk, hidden, batch_first=True)
            out_in = hidden
        self.out = _maybe_sn(nn.Linear(out_in, 2 * norm_channels), spectral)

    def forward(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if feat.ndim != 2 or feat.shape[1] != self.in_features:
            raise ValueError(f"expected (B, {self.in_features}) features, got {tuple(feat.shape)}")
        if self.variant == "conv1d":
            h = self.net(feat.unsqueeze(1))
        else:
            pad = self.steps * self.chunk - self.in_features
            seq = F.pad(feat, (0, pad)).view(feat.shape[0], self.steps, self.chunk)
            # the LSTM is tiny: run it in float32 whatever autocast says (bf16 RNN support varies)
            with torch.autocast(device_type=feat.device.type, enabled=False):
                _, (h_n, _) = self.net(seq.float())
            h = h_n[-1]
        gb = self.out(h)
        gamma, beta = gb[:, : self.norm_channels], gb[:, self.norm_channels :]
        return gamma[:, :, None, None], beta[:, :, None, None]


STATIC_MODALITIES = ("image",)
"""Modalities that are the same for every frame of a generated clip (the reference face)."""


@dataclass(frozen=True)
class ModalitySpec:
    """One conditioning modality of a MAN block.

    Attributes:
        name: key of the input in the ``cond`` mapping (``image``, ``flow``/``keypoints``,
            ``mel``, ``pitch``, ``energy``).
        kind: ``"video"`` (spatial ``(B, C, H, W)`` input) or ``"audio"`` (``(B, F)`` vector).
        channels: input channels (video) or features F (audio).
        sparse: a video modality whose ~0 pixels are holes (motion), for partial convolution.
    """

    name: str
    kind: str
    channels: int
    sparse: bool = False


class MANBlock(nn.Module):
    """Multi-modal adaptive normalisation — MAN Eq. 1–2.

    ``y = Σ_m ρ_m (x_norm · (1 + γ_m) + β_m)``, ``x_norm = BatchNorm2d(affine=False)(x)``,
    ``ρ = softmax(logits)`` over the M modalities (so Σ ρ = 1).

    Args:
        norm_channels: C, channels of ``x``.
        modalities: the modalities, in ρ order.
        video_hidden: hidden width of each :class:`VideoAffine2D`.
        audio_hidden: hidden width of each :class:`AudioAffine1D`.
        video_branch: ``"conv2d"`` | ``"partial_conv2d"`` | ``"conv2d_eca"``.
        audio_branch: ``"conv1d"`` | ``"lstm"``.
        spectral_affine: spectral norm inside the γ/β nets.

    Forward:
        ``x (B, C, H, W)``, ``cond`` mapping modality name → tensor (video ``(B, Cm, h, w)``
        any size, audio ``(B, F)``) → ``(B, C, H, W)``.
    """

    def __init__(
        self,
        norm_channels: int,
        modalities: Sequence[ModalitySpec],
        video_hidden: int = 128,
        audio_hidden: int = 64,
        video_branch: str = "conv2d_eca",
        audio_branch: str = "lstm",
        spectral_affine: bool = False,
    ):
        super().__init__()
        if not modalities:
            raise ValueError("a MAN block needs at least one modality")
        names = [m.name for m in modalities]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate modality names: {names}")
        self.names = tuple(names)
        self.norm = nn.BatchNorm2d(norm_channels, affine=False)
        branches = {}
        for m in modalities:
            if m.kind == "video":
                branches[m.name] = VideoAffine2D(m.channels, norm_channels, video_hidden, video_branch, spectral_affine, m.sparse)
            elif m.kind == "audio":
                branches[m.name] = AudioAffine1D(m.channels, norm_channels, audio_hidden, audio_branch, spectral=spectral_affine)
            else:
                raise ValueError(f"modality {m.name!r}: kind must be 'video' or 'audio', got {m.kind!r}")
        self.branches = nn.ModuleDict(branches)
        self.rho_logits = nn.Parameter(torch.zeros(len(modalities)))

    def rho(self) -> torch.Tensor:
        """Mixing weights ρ, ``(M,)`` in modality order, non-negative, summing to 1."""
        return torch.softmax(self.rho_logits, dim=0)

    def forward(self, x: torch.Tensor, cond: Mapping[str, torch.Tensor], memo: dict | None = None) -> torch.Tensor:
        """``memo`` (inference, a2v): a dict kept across calls whose ``image`` input is one and the
        same reference for every batch item and call (generation of one clip). The ``image``
        branch's γ/β depend on nothing else, so they are computed once (for batch item 0), stored
        in ``memo`` and broadcast over the batch afterwards: the same values, one branch fewer per
        frame. ``None`` (training): every branch runs."""
        x_norm = self.norm(x)
        size = (x.shape[-2], x.shape[-1])
        rho = self.rho().to(x.dtype)
        gamma_sum = 0.0
        beta_sum = 0.0
        for i, name in enumerate(self.names):
            if name not in cond or cond[name] is None:
                raise ValueError(f"MAN block needs the {name!r} input; got {sorted(k for k, v in cond.items() if v is not None)}")
            branch = self.branches[name]
            if memo is not None and name in STATIC_MODALITIES:
                if name not in memo:
                    memo[name] = branch(cond[name][:1], size)
                gamma, beta = memo[name]
            elif isinstance(branch, VideoAffine2D):
                gamma, beta = branch(cond[name], size)
            else:
                gamma, beta = branch(cond[name])
            gamma_sum = gamma_sum + rho[i] * gamma
            beta_sum = beta_sum + rho[i] * beta
        return x_norm * (1.0 + gamma_sum) + beta_sum


class MANResBlock(nn.Module):
    """ResNet block around MAN — MAN Fig. 4 / supp. Fig. 7.

    ``MAN → LeakyReLU(0.2) → SN conv3×3 → MAN → LeakyReLU(0.2) → SN conv3×3`` plus a shortcut,
    which is learned (``MAN → SN conv1×1``, no bias) when the widths differ, identity otherwise.
    The hidden width is ``min(in, out)`` (SPADE's choice).

    Forward:
        ``x (B, in, H, W)``, ``cond`` as for :class:`MANBlock` → ``(B, out, H, W)``.
    """

    def __init__(self, in_channels: int, out_channels: int, modalities: Sequence[ModalitySpec], **man_kwargs):
        super().__init__()
        mid = min(in_channels, out_channels)
        self.learned_shortcut = in_channels != out_channels
        self.norm_0 = MANBlock(in_channels, modalities, **man_kwargs)
        self.conv_0 = sn_conv2d(in_channels, mid, 3)
        self.norm_1 = MANBlock(mid, modalities, **man_kwargs)
        self.conv_1 = sn_conv2d(mid, out_channels, 3)
        if self.learned_shortcut:
            self.norm_s = MANBlock(in_channels, modalities, **man_kwargs)
            self.conv_s = sn_conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor, cond: Mapping[str, torch.Tensor], memo: dict | None = None) -> torch.Tensor:
        """``memo``: as for :meth:`MANBlock.forward`, one sub-dict per MAN block of this block."""
        sub = (lambda k: memo.setdefault(k, {})) if memo is not None else (lambda k: None)
        shortcut = self.conv_s(self.norm_s(x, cond, sub("norm_s"))) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, cond, sub("norm_0")), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, cond, sub("norm_1")), 0.2))
        return shortcut + dx


class CAMLayer(nn.Module):
    """Class-activation-map layer, U-GAT-IT style — MAN §3.0.1, supp. Fig. 2.

    Global average pooling and global max pooling each give a logit through a bias-free linear
    layer; the feature map is re-weighted channel-wise by that layer's weights (the CAM); the two
    re-weighted maps are concatenated and fused by ``conv1×1 → ReLU`` back to ``channels``.

    Args:
        channels: C.
        shared_fc: one linear layer for both pools (``True``) or one per pool as in U-GAT-IT
            (``False``, default).
        spectral: spectral norm on the linear and 1×1 conv layers.

    Forward:
        ``x (B, C, H, W)`` → ``(features (B, C, H, W), cam_logits (B, 2))`` where
        ``cam_logits[:, 0]`` comes from the average pool and ``[:, 1]`` from the max pool.
    """

    def __init__(self, channels: int, shared_fc: bool = False, spectral: bool = True):
        super().__init__()
        self.gap_fc = _maybe_sn(nn.Linear(channels, 1, bias=False), spectral)
        self.gmp_fc = self.gap_fc if shared_fc else _maybe_sn(nn.Linear(channels, 1, bias=False), spectral)
        self.fuse = _maybe_sn(nn.Conv2d(2 * channels, channels, 1), spectral)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gap_logit = self.gap_fc(x.mean(dim=(2, 3)))
        gmp_logit = self.gmp_fc(x.amax(dim=(2, 3)))
        w_gap = self.gap_fc.weight.reshape(1, -1, 1, 1)
        w_gmp = self.gmp_fc.weight.reshape(1, -1, 1, 1)
        h = torch.cat([x * w_gap, x * w_gmp], dim=1)
        return F.relu(self.fuse(h)), torch.cat([gap_logit, gmp_logit], dim=1)
