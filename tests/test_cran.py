"""CRAN (a2v.recipes.cran, a2v.models.cran) on real GRID clips of resources/grid_sample: the
networks' shapes on sequences of different lengths and at the paper's size (appendix Tables 5–8),
the GRU's causality and the CAE's frame independence, the config checks, and the three-phase
schedule on one real clip through the phase runner, then generation of any length from the
saved checkpoint as ``a2v generate`` does it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from a2v.features.shard import ShardReader
from a2v.features.windows import frames_to_tensor, resize_frames
from a2v.models.cran import CranConfig, CranDiscriminator, CranGenerator
from a2v.recipes import make_recipe
from a2v.recipes.cran.step import mismatched
from conftest import HELD_OUT_CLIPS, TRAIN_CLIPS

SMALL = {"image_size": 32, "audio_channels": 8, "image_channels": 8, "hidden": 64, "code_dim": 32,
         "discriminator": {"base_channels": 8}}


def _clip(shard, clip: str, n: int | None = None, size: int = 32):
    """Real frames ``(1, T, 3, size, size)`` in [-1, 1] and raw ``mfcc_cran (1, T, 35, 12)`` of a clip."""
    span = slice(0, n) if n else slice(None)
    with ShardReader(shard) as r:
        frames = resize_frames(r.read(clip, "frames", span), size)
        mfcc = r.read(clip, "mfcc_cran", span)
    return frames_to_tensor(frames)[None], torch.from_numpy(mfcc)[None]


@pytest.mark.parametrize("T", [3, 7, 12])
def test_generator_and_heads_on_sequences_of_different_lengths(s1_shard8, T, one_thread):
    torch.manual_seed(0)
    frames, mfcc = _clip(s1_shard8, TRAIN_CLIPS[1], T)
    G = CranGenerator(CranConfig.from_dict(SMALL)).eval()
    ref = frames[:, 0]
    with torch.no_grad():
        out, z_a, hidden = G(ref, mfcc)
        assert out.shape == (1, T, 3, 32, 32) and z_a.shape == (1, T, 32) and hidden.shape == (1, 1, 64)
        assert out.abs().max() <= 1.0 and out.std() > 0.01  # tanh range, not a constant image
        # RAE: causal — the first 3 frames do not depend on the audio after them
        assert torch.allclose(G(ref, mfcc[:, :3])[0], out[:, :3], atol=1e-5)
        if T > 3:  # ... and the state after frame T-1 depends on the frames before it
            assert (G(ref, mfcc[:, T - 1:])[2] - hidden).abs().max() > 0.05
        # CAE: the GRU bypassed, every frame is its own audio's alone (Speech2Vid, §3.1)
        G.set_recurrent(False)
        cae, _, none = G(ref, mfcc)
        assert none is None and cae.shape == out.shape
        assert torch.allclose(G(ref, mfcc[:, T - 1:])[0][:, 0], cae[:, T - 1], atol=1e-5)

        D = CranDiscriminator(32, 8, 32).eval()
        d = D(frames[0], z_a[0])
        assert d["image_logits"].shape == (T, 1, 2, 2) and d["match_logits"].shape == (T,)
        assert set(D(frames[0])) == {"image_logits"}  # the image-aware head alone needs no audio


def test_paper_size_layer_shapes(s1_shard8, one_thread):
    """Tables 5–8 at 112×112 on two real frames (the shard's 64² crops resized)."""
    torch.manual_seed(0)
    frames, mfcc = _clip(s1_shard8, TRAIN_CLIPS[2], 2, size=112)
    G = CranGenerator(CranConfig()).eval()
    x = mfcc[0].transpose(1, 2).unsqueeze(1)  # the table's 12 × 35 × 1 input
    with torch.no_grad():
        assert G.audio_encoder.convs[:3](x).shape == (2, 128, 12, 18)  # Table 5 row 3
        assert G.audio_encoder.convs(x).shape == (2, 512, 6, 9)        # Table 5 row 7
        z_i, skips = G.image_encoder(frames[:, 0])
        assert z_i.shape == (1, 256) and [tuple(s.shape[1:]) for s in skips] == [(64, 56, 56), (128, 28, 28), (256, 14, 14)]
        assert G.decoder.fc[0].out_features == 25088                   # Table 7 row 1
        out, z_a, hidden = G(frames[:, 0], mfcc)
        assert out.shape == (1, 2, 3, 112, 112) and z_a.shape == (1, 2, 256) and hidden.shape == (1, 1, 512)
        D = CranDiscriminator().eval()
        h = D.trunk(frames[0])
        assert h.shape == (2, 128, 7, 7) and D.match_down(h).shape == (2, 256, 4, 4)  # Table 8 rows 4-5
        assert D.image_head(h).shape == (2, 1, 7, 7) and D.match_head(h, z_a[0]).shape == (2,)
    gru = G.gru.weight_hh_l0.detach()[:512]  # one gate block: orthogonal (§4.2)
    assert torch.allclose(gru @ gru.T, torch.eye(512), atol=1e-4)


def test_config_checks_and_mismatched_audio():
    ok = [{"name": "a", "steps": 1, "recurrent": False, "discriminators": []}]
    r = make_recipe("cran", SMALL, {"sequence_length": 8}, ok)
    assert r.phases[0].active() == {"rec": 1.0} and r.training.lr == 2e-4 and r.training.betas == (0.5, 0.999)
    assert r.training.perceptual["backbone"] == "vgg16_hed" and not r.training.perceptual["download"]
    bad = [
        ({**SMALL, "gru_size": 3}, {}, ok, "unknown model keys"),
        ({**SMALL, "discriminator": {"n_layers": 3}}, {}, ok, "unknown model.discriminator keys"),
        ({**SMALL, "image_size": 40}, {}, ok, "multiple of 16"),
        (SMALL, {"seq_len": 8}, ok, "unknown training keys"),
        (SMALL, {"batch_size": 1}, ok, "batch_size must be >= 2"),
        (SMALL, {"sequence_length": 8, "mismatch_shift": 8}, ok, "mismatch_shift"),
        (SMALL, {}, [{"name": "a", "steps": 1, "discriminators": ["image"], "losses": {"adv_match": 1e-3}}], "adv_match needs matching"),
        (SMALL, {}, [{"name": "a", "steps": 1, "recurrent": "yes"}], "recurrent must be true or false"),
        (SMALL, {}, [{"name": "a", "steps": 1, "gru": True}], "unknown keys"),
    ]
    for model, training, phases, message in bad:
        with pytest.raises(ValueError, match=message):
            make_recipe("cran", model, training, phases)
    codes = torch.arange(8.0).view(1, 8, 1)
    assert mismatched(codes, 4)[0, :, 0].tolist() == [4, 5, 6, 7, 0, 1, 2, 3]  # frame t meets the code of t - 4
    with pytest.raises(ValueError, match="mismatch shift"):
        mismatched(codes, 8)


def test_three_phases_on_one_real_clip_then_generate_any_length(s1_shard8, tmp_path, one_thread):
    """The paper's schedule through the phase runner on one real clip: CAE (reconstruction only),
    CAE + perceptual + both adversarial heads, RAE (GRU on) fine-tuned from it. The CAE overfits
    the clip (its L1 falls at least 3×; measured: 0.46 → 0.08 over 60 steps); the final
    checkpoint, loaded as ``a2v generate`` loads it, makes a held-out clip's 37 frames (not a
    multiple of the training windows' 8) with the same frames whatever the chunk size (exactly the
    same, streamed from uneven chunks of features, for one block size), and the
    training clip closer to the real one than the untrained model (mean abs error 50.6 → 8.8 of
    255 measured; asserted < 0.3×)."""
    from a2v.inference import load_generator
    from a2v.training.checkpoint import load_checkpoint
    from a2v.training.loop import train_phase

    losses = {"rec": 1.0, "perceptual": 1e-4, "adv_image": 1e-3, "adv_match": 1e-3}
    phases = [
        {"name": "cae", "steps": 60, "recurrent": False, "discriminators": [], "losses": {"rec": 1.0}},
        {"name": "cae_pg", "steps": 6, "recurrent": False, "discriminators": ["image", "matching"], "losses": losses},
        {"name": "rae", "steps": 30, "recurrent": True, "discriminators": ["image", "matching"], "losses": losses},
    ]
    training = {"batch_size": 2, "sequence_length": 8, "lr": 2e-3, "log_every": 5, "checkpoint_every": 1000,
                "perceptual": {"layers": ["relu1_2"]}}
    config = {"model_type": "cran", "model": SMALL, "training": training, "phases": phases,
              "preprocess": {"sample_rate": 16000, "fps": 25.0}}
    clip = [(str(s1_shard8), TRAIN_CLIPS[0])]
    recipe = make_recipe("cran", SMALL, training, phases)
    with ShardReader(s1_shard8) as r:
        real = resize_frames(r.read(TRAIN_CLIPS[0], "frames"), 32)
        feats = {"mfcc_cran": r.read(TRAIN_CLIPS[0], "mfcc_cran")}
        held_out = r.read(HELD_OUT_CLIPS[0], "mfcc_cran")[:37]

    def error(nets, state) -> float:
        fake = recipe.generate({k: v.eval() for k, v in nets.items()}, state, real[0], feats)
        return float(np.abs(fake.astype(np.float32) - real).mean())

    torch.manual_seed(0)
    before = error(recipe.build(), recipe.fit_state(clip))
    init, ckpts = None, []
    for k in range(3):
        init = train_phase(config, [str(s1_shard8)], clip, k, tmp_path / f"phase{k + 1}", init, log=lambda m: None)
        ckpts.append(load_checkpoint(init))
    assert [bool(c["networks"]["generator"]["recurrent_flag"]) for c in ckpts] == [False, False, True]

    rows = [line.split(",") for line in (tmp_path / "phase1" / "losses.csv").read_text().splitlines()]
    rec = [float(row[rows[0].index("g_rec")]) for row in rows[1:]]
    print(f"CAE L1 on the clip: {rec[0]:.3f} -> {rec[-1]:.3f}")
    assert rec[-1] < rec[0] / 3
    header = (tmp_path / "phase3" / "losses.csv").read_text().splitlines()[0].split(",")
    assert {"g_perceptual", "g_adv_image", "g_adv_match", "d_image", "d_match"} <= set(header)

    gen = load_generator(init)
    after = error(gen.networks, gen.state)
    print(f"mean abs error on the training clip (0-255): untrained {before:.1f}, after the three phases {after:.1f}")
    assert after < 0.3 * before
    face = real[0]
    whole = gen.generate(face, {"mfcc_cran": held_out}, batch=37)
    chunked = gen.generate(face, {"mfcc_cran": held_out}, batch=5)
    assert whole.shape == (37, 32, 32, 3) and whole.dtype == np.uint8 and whole.std() > 1
    assert int(np.abs(whole.astype(int) - chunked).max()) <= 1  # the GRU state crosses the chunks
    # a2v generate's stream: features in uneven chunks, blocks of `batch` frames out, the same frames
    cuts = [0, 3, 4, 20, 37]
    blocks = list(gen.generate_stream(face, [{"mfcc_cran": held_out[a:b]} for a, b in zip(cuts, cuts[1:])], batch=5))
    assert [len(b) for b in blocks] == [5] * 7 + [2] and np.array_equal(np.concatenate(blocks), chunked)
    assert np.abs(whole[1:].astype(int) - whole[:-1]).mean() > 0.1  # the audio moves the frames
    with pytest.raises(ValueError, match="mfcc_cran"):
        gen.generate(face, {"mfcc": held_out})

    facts = dict(recipe.facts(ckpts))
    assert "VGG-Face" in facts["perceptual loss"] and "vgg16_hed" in facts["perceptual loss"]
    assert facts["stages"] == "cae: CAE (GRU bypassed); cae_pg: CAE (GRU bypassed); rae: RAE (GRU on)"
