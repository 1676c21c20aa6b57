"""Shapes, dtypes and wiring of the MAN models and losses, on real GRID frames and audio features.

Inputs come from the pipeline's own shard of two real s1 clips (fixture ``s1_shard``): aligned
crops resized to the test size, Farnebäck flow between them (:mod:`a2v.features.flow`), and the
shard's MFCC / mel / F0 / energy features.
"""

from __future__ import annotations


import cv2
import numpy as np
import pytest
import torch

from a2v.features.flow import farneback_flow
from a2v.features.shard import ShardReader
from a2v.recipes.man.losses import LOSS_KEYS, DiscriminatorLoss, GeneratorLoss
from a2v.losses import (
    d_adversarial,
    feature_matching,
    g_adversarial,
    lower_half_l1,
)
from a2v.models.partial_conv import PartialConv2d, validity_mask
from a2v.models import (
    AudioAffine1D,
    CAMLayer,
    DiscriminatorConfig,
    FlowPredictor,
    KeypointPredictor,
    MANBlock,
    MANResBlock,
    ManConfig,
    ManGenerator,
    MultiScalePatchGAN,
    PredictorConfig,
    VideoAffine2D,
    build_predictor,
    count_parameters,
)

B = 2


@pytest.fixture(scope="module")
def clip(s1_shard):
    """One real clip from the pipeline's shard: 64×64 aligned crops (uint8) and raw audio features."""
    with ShardReader(s1_shard) as shard:
        clip_id = shard.clip_ids[0]
        frames = shard.read(clip_id, "frames")
        feats = {k: shard.read(clip_id, k) for k in ("mfcc", "mel", "f0_bin", "energy_bin")}
    return frames, feats


def _batch(clip, size: int, t0: int = 30) -> dict[str, torch.Tensor]:
    """A batch of B consecutive real frames at ``size``² with flow, standardised audio features."""
    frames, feats = clip
    crops = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames[t0 - 6 : t0 + B]])
    flow = farneback_flow(crops)[6:].astype(np.float32)
    img = torch.from_numpy(crops).float().div(127.5).sub(1).permute(0, 3, 1, 2)
    prev = torch.stack([img[i + 1 : i + 6].reshape(15, size, size) for i in range(B)])
    sl = slice(t0, t0 + B)
    mfcc = feats["mfcc"][sl]
    mel = feats["mel"][sl]
    return {
        "reference": img[:1].expand(B, -1, -1, -1).contiguous(),
        "target": img[6:],
        "prev_frames": prev,
        "flow": torch.from_numpy(flow),
        "mfcc": torch.from_numpy((mfcc - mfcc.mean()) / mfcc.std()),
        "mel": torch.from_numpy((mel - mel.mean()) / mel.std()),
        "f0_bin": torch.from_numpy(feats["f0_bin"][sl].astype(np.int64)),
        "energy_bin": torch.from_numpy(feats["energy_bin"][sl].astype(np.int64)),
    }


def _small(size: int, **kw) -> ManConfig:
    return ManConfig(image_size=size, base_channels=8, max_channels=32, video_hidden=8, audio_hidden=8, audio_channels=16, **kw)


# ---------------------------------------------------------------------------------------- blocks
@pytest.mark.parametrize("variant", ["conv2d", "partial_conv2d", "conv2d_eca"])
@pytest.mark.parametrize("size", [16, 32])
def test_video_affine_resizes_condition(clip, variant, size):
    x = _batch(clip, 64)
    for cond, sparse in ((x["reference"], False), (x["flow"], True)):
        net = VideoAffine2D(cond.shape[1], 12, hidden=8, variant=variant, sparse=sparse)
        gamma, beta = net(cond, (size, size))
        assert gamma.shape == beta.shape == (B, 12, size, size)
        assert gamma.dtype == torch.float32 and torch.isfinite(gamma).all()


def test_video_affine_rejects_unknown_variant():
    with pytest.raises(ValueError, match="conv2d, partial_conv2d, conv2d_eca"):
        VideoAffine2D(3, 8, variant="gated_conv2d")


def test_partial_conv_known_values(clip):
    """Liu et al. 2018 Eq. 1–2: interior = plain conv; borders re-weighted by sum(1)/sum(M); holes → 0."""
    x = _batch(clip, 64)["reference"]
    conv = PartialConv2d(3, 4, 3, padding=1)
    y, mask = conv(x)
    plain = torch.nn.functional.conv2d(x, conv.weight, None, padding=1)
    assert torch.allclose(y[..., 1:-1, 1:-1], plain[..., 1:-1, 1:-1] + conv.bias.view(1, -1, 1, 1), atol=1e-5)
    # a corner sees 4 of the 9 window positions → scaled by 9/4 (partial-convolution padding)
    assert torch.allclose(y[..., 0, 0], plain[..., 0, 0] * 9 / 4 + conv.bias, atol=1e-5)
    assert mask.shape == (B, 1, 64, 64) and bool((mask == 1).all())
    # the motion modality: holes where the real Farnebäck flow is ~0
    flow = _batch(clip, 64)["flow"]
    m = validity_mask(flow, eps=0.05)
    assert 0 < m.mean() < 1, "a real flow field has both moving and still pixels"
    y, m2 = PartialConv2d(2, 4, 3, padding=1)(flow, m)
    assert bool((y[m2.expand_as(y) == 0] == 0).all()) and bool((m2 >= m).all())  # holes shrink by one pixel
    with pytest.raises(ValueError, match="mask"):
        conv(x, torch.ones(B, 3, 64, 64))


@pytest.mark.parametrize("variant", ["conv1d", "lstm"])
def test_audio_affine_shapes(clip, variant):
    x = _batch(clip, 64)
    net = AudioAffine1D(256, 24, hidden=8, variant=variant)
    gamma, beta = net(x["mel"])
    assert gamma.shape == beta.shape == (B, 24, 1, 1)
    with pytest.raises(ValueError):
        net(x["mel"][:, :100])


def _cond(x: dict, cfg: ManConfig) -> dict:
    return {
        "image": x["reference"],
        "flow": x["flow"],
        "mel": x["mel"],
        "pitch": torch.nn.functional.one_hot(x["f0_bin"], 256).float(),
        "energy": torch.nn.functional.one_hot(x["energy_bin"], 256).float(),
    }


@pytest.mark.parametrize("side", [16, 32])
def test_man_block_rho_sums_to_one_and_gets_gradients(clip, side):
    x = _batch(clip, 64)
    cfg = _small(64)
    block = MANBlock(12, cfg.modalities(), video_hidden=8, audio_hidden=8)
    feat = torch.nn.functional.interpolate(x["target"], size=(side, side), mode="area").repeat(1, 4, 1, 1)
    y = block(feat, _cond(x, cfg))
    assert y.shape == feat.shape and y.dtype == torch.float32
    rho = block.rho()
    assert rho.shape == (5,)
    assert torch.allclose(rho.sum(), torch.tensor(1.0))
    (y**2).mean().backward()
    grad = block.rho_logits.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_man_block_needs_each_modality(clip):
    x = _batch(clip, 64)
    cfg = _small(64)
    block = MANBlock(4, cfg.modalities(), video_hidden=8, audio_hidden=8)
    cond = _cond(x, cfg)
    del cond["pitch"]
    with pytest.raises(ValueError, match="pitch"):
        block(torch.zeros(B, 4, 8, 8), cond)


@pytest.mark.parametrize("side", [8, 32])
def test_man_resblock_and_cam(clip, side):
    x = _batch(clip, 64)
    cfg = _small(64)
    feat = torch.nn.functional.interpolate(x["target"], size=(side, side), mode="area").repeat(1, 2, 1, 1)  # (B, 6, s, s)
    block = MANResBlock(6, 10, cfg.modalities(), video_hidden=8, audio_hidden=8)
    assert block.learned_shortcut
    y = block(feat, _cond(x, cfg))
    assert y.shape == (B, 10, side, side) and y.dtype == torch.float32
    assert not MANResBlock(6, 6, cfg.modalities(), video_hidden=8, audio_hidden=8).learned_shortcut
    features, logits = CAMLayer(10)(y)
    assert features.shape == y.shape and logits.shape == (B, 2) and logits.dtype == torch.float32
    assert (features >= 0).all()  # ReLU output


# ------------------------------------------------------------------------------------- generator
@pytest.mark.parametrize("size", [64, 128])
@pytest.mark.parametrize("motion", ["flow", "keypoints"])
def test_generator_shapes(clip, size, motion):
    x = _batch(clip, size)
    cfg = _small(size, motion=motion, video_branch="conv2d", audio_branch="conv1d")
    gen = ManGenerator(cfg)
    pred = build_predictor(cfg, PredictorConfig(base_channels=8, depth=3))
    motion_in = pred(x["prev_frames"], x["mel"])
    if motion == "flow":
        assert isinstance(pred, FlowPredictor) and motion_in.shape == (B, 2, size, size)
    else:
        assert isinstance(pred, KeypointPredictor) and motion_in.shape == (B, 15, 96, 96)
        assert motion_in.min() >= 0 and motion_in.max() <= 1
    out = gen(x["reference"], motion_in, x["mfcc"], x["mel"], x["f0_bin"], x["energy_bin"])
    assert out["frame"].shape == (B, 3, size, size) and out["frame"].dtype == torch.float32
    assert out["frame"].abs().max() <= 1.0
    assert out["cam_logits"].shape == (B, 2)
    assert gen.rho().shape == (5,)
    assert len(gen.blocks) == 8 and cfg.block_levels()[-1] == cfg.n_levels - 1


def test_generator_reference_memo_gives_the_same_frames(clip):
    """Inference memo: the reference's γ/β computed in the first call and reused in later calls of
    the same clip give exactly the frames of the plain forward (batch 1 and a batch of B), and the
    memo holds one entry per MAN block that reads the image."""
    x = _batch(clip, 64)
    gen = ManGenerator(_small(64)).eval()
    memo: dict = {}
    with torch.inference_mode():
        for i in range(B):
            one = {k: v[i:i + 1] for k, v in x.items()}
            args = (one["reference"], one["flow"], one["mfcc"], one["mel"], one["f0_bin"], one["energy_bin"])
            assert torch.equal(gen(*args, memo=memo)["frame"], gen(*args)["frame"])
        args = (x["reference"], x["flow"], x["mfcc"], x["mel"], x["f0_bin"], x["energy_bin"])
        plain = gen(*args)["frame"]
        assert torch.allclose(gen(*args, memo=memo)["frame"], plain, atol=1e-5)
    n_man_blocks = sum(1 for m in gen.modules() if type(m).__name__ == "MANBlock")
    cached = [v for block in memo.values() for v in block.values()]
    assert len(cached) == n_man_blocks and all(set(c) == {"image"} for c in cached)


@pytest.mark.parametrize("video_branch", ["conv2d", "partial_conv2d", "conv2d_eca"])
@pytest.mark.parametrize("audio_branch", ["conv1d", "lstm"])
def test_table2_branch_variants_train(clip, video_branch, audio_branch):
    """Every MAN Table-2 extractor pair builds, runs and back-propagates into its γ/β nets."""
    x = _batch(clip, 64)
    gen = ManGenerator(_small(64, video_branch=video_branch, audio_branch=audio_branch))
    out = gen(x["reference"], x["flow"], x["mfcc"], x["mel"], x["f0_bin"], x["energy_bin"])
    assert out["frame"].shape == (B, 3, 64, 64) and torch.isfinite(out["frame"]).all()
    out["frame"].mean().backward()
    branch = gen.blocks[3].norm_0.branches
    assert branch["flow"].variant == video_branch and branch["mel"].variant == audio_branch
    for name in ("image", "flow", "mel", "pitch", "energy"):
        grads = [p.grad for p in branch[name].parameters() if p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads), name


def test_generator_default_branches_and_ablation(clip):
    x = _batch(clip, 64)
    cfg = _small(64, use_motion=False, use_pitch=False, use_energy=False)  # Table 3 "BM + mel" without OFP
    assert cfg.video_branch == "conv2d_eca" and cfg.audio_branch == "lstm"
    gen = ManGenerator(cfg)
    assert gen.modality_names == ["image", "mel"]
    out = gen(x["reference"], None, x["mfcc"], x["mel"], None, None)
    assert out["frame"].shape == (B, 3, 64, 64)
    base = ManGenerator(_small(64, use_motion=False, use_mel=False, use_pitch=False, use_energy=False))
    assert base.modality_names == ["image"] and torch.allclose(base.rho(), torch.ones(1))


def test_generator_rejects_bad_inputs(clip):
    x = _batch(clip, 64)
    gen = ManGenerator(_small(64))
    with pytest.raises(ValueError, match="motion"):
        gen(x["reference"], None, x["mfcc"], x["mel"], x["f0_bin"], x["energy_bin"])
    with pytest.raises(ValueError, match="mfcc"):
        gen(x["reference"], x["flow"], x["mfcc"][:, :10], x["mel"], x["f0_bin"], x["energy_bin"])


def test_config_validation_and_schedule():
    cfg = ManConfig(image_size=256)
    assert cfg.n_levels == 7 and cfg.block_levels() == [0, 0, 1, 2, 3, 4, 5, 6]
    assert cfg.level_channels() == [512, 512, 512, 512, 256, 128, 64]
    assert ManConfig(image_size=64).block_levels() == [0, 0, 1, 1, 2, 3, 3, 4]
    assert ManConfig.from_dict(cfg.to_dict()) == cfg
    assert ManConfig(video_branch="partial_conv2d").video_branch == "partial_conv2d"
    with pytest.raises(ValueError, match="video_branch"):
        ManConfig(video_branch="gated_conv2d")
    with pytest.raises(ValueError):
        ManConfig(image_size=96)
    with pytest.raises(ValueError, match="unknown model keys"):
        ManConfig.from_dict({"image_sise": 64})


def test_flow_predictor_outputs_pixels(clip):
    x = _batch(clip, 64)
    pred = FlowPredictor(64, base_channels=8, depth=3, flow_scale=4.0)
    with torch.no_grad():
        out = pred(x["prev_frames"], x["mel"])
        pred.flow_scale = 1.0
        out1 = pred(x["prev_frames"], x["mel"])
    assert torch.allclose(out, 4.0 * out1, atol=1e-5)


# --------------------------------------------------------------------------------- discriminator
@pytest.mark.parametrize("size", [64, 128])
def test_discriminator_shapes(clip, size):
    x = _batch(clip, size)
    disc = MultiScalePatchGAN.from_config(DiscriminatorConfig(n_scales=3, base_channels=8, n_layers=3, max_channels=32))
    outs = disc(x["target"], x["reference"])
    assert len(outs) == 3
    sides = []
    for o in outs:
        assert len(o["features"]) == 4
        assert o["logits"].shape[:2] == (B, 1) and o["cam_logits"].shape == (B, 2)
        sides.append(o["logits"].shape[-1])
    assert sides[0] > sides[1] > sides[2]
    with pytest.raises(ValueError):
        disc(x["target"], x["reference"][:, :, :32])


def test_parameter_counts_scale_with_config():
    small, paper = ManGenerator(_small(64)), ManGenerator(ManConfig(image_size=64, base_channels=16, max_channels=64))
    assert 0 < count_parameters(small) < count_parameters(paper)


# ---------------------------------------------------------------------------------------- losses
def test_adversarial_known_values():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.5])
    # hinge D: relu(1-2)=0, relu(1-0.5)=0.5 → 0.25; relu(1-2)=0, relu(1.5)=1.5 → 0.75
    assert torch.isclose(d_adversarial(real, fake, "hinge"), torch.tensor(1.0))
    assert torch.isclose(g_adversarial(fake, "hinge"), torch.tensor(0.75))
    assert torch.isclose(d_adversarial(real, fake, "lsgan"), torch.tensor((1 + 0.25) / 2 + (4 + 0.25) / 2))
    bce = torch.nn.functional.softplus
    expected = (bce(-real).mean() + bce(fake).mean())
    assert torch.isclose(d_adversarial(real, fake, "original"), expected)
    assert torch.isclose(d_adversarial([real, real], [fake, fake], "bce"), 2 * expected)
    with pytest.raises(ValueError, match="hinge"):
        g_adversarial(fake, "wgan")


def test_lower_half_l1_ignores_upper_half(clip):
    x = _batch(clip, 64)
    real = x["target"]
    fake = real.clone()
    fake[..., :32, :] = -1.0  # change only the upper half
    assert lower_half_l1(fake, real) == 0
    fake[..., 32:, :] += 0.5
    assert torch.isclose(lower_half_l1(fake, real), torch.tensor(0.5))


def test_zero_weight_skips_terms(clip):
    x = _batch(clip, 64)
    real, fake = x["target"], x["reference"]
    # adv/fm/cam weigh 0: no discriminator output is needed, and they are not in the dict
    loss = GeneratorLoss({"adv": 0, "fm": 0, "cam": 0, "l1_lower": 10.0, "flow_mse": 0})
    terms = loss(fake, real)
    assert set(terms) == {"l1_lower", "total"}
    assert torch.isclose(terms["total"], 10 * terms["l1_lower"])
    with pytest.raises(ValueError, match="adv"):
        GeneratorLoss({"adv": 1.0})(fake, real)
    disc = MultiScalePatchGAN(n_scales=2, base_channels=8, n_layers=2, max_channels=16)
    d_real, d_fake = disc(real, x["reference"]), disc(fake, x["reference"])
    full = GeneratorLoss({k: 1.0 for k in ("adv", "fm", "cam", "l1_lower")})(fake, real, d_fake, d_real)
    assert set(full) == {"adv", "fm", "cam", "l1_lower", "total"}
    assert torch.isclose(full["total"], sum(full[k] for k in ("adv", "fm", "cam", "l1_lower")))
    assert set(DiscriminatorLoss({"adv": 1.0, "cam": 0.0})(d_real, d_fake)) == {"adv", "total"}
    assert torch.isclose(feature_matching(d_real, d_real), torch.tensor(0.0))
    with pytest.raises(ValueError, match="perceptual"):
        GeneratorLoss({"perceptual": 1.0})  # weighted but no network given
    assert "perceptual" in LOSS_KEYS
