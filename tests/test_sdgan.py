"""The speech-driven GAN of Jain et al. (a2v.recipes.sdgan, a2v.models.sdgan, a2v.models.spp) on real
GRID clips of resources/grid_sample: shapes on sequences of different lengths, the 1-D pyramid
pooling's length-independent size, the sequence discriminator on any length, a short overfit on one
real clip through the phase runner, and generation of any length from the saved checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from a2v.features.shard import ShardReader
from a2v.features.windows import frames_to_tensor, resize_frames
from a2v.models.sdgan import FrameDiscriminator, SdganConfig, SdganGenerator, SequenceDiscriminator
from a2v.models.spp import TemporalPyramidPool
from a2v.recipes import make_recipe
from conftest import HELD_OUT_CLIPS, SDGAN_HALF, SDGAN_TINY_D, SDGAN_TINY_G, TRAIN_CLIPS

TINY_D, TINY_G, HALF = SDGAN_TINY_D, SDGAN_TINY_G, SDGAN_HALF  # networks at 32², frames resized to 64² (conftest)
NATIVE = {"image_size": 64, **TINY_G, **TINY_D}                        # networks at the shard's 64², 4 skips


def _clip(shard, clip: str, n: int | None = None):
    with ShardReader(shard) as r:
        span = slice(0, n) if n else slice(None)
        return r.read(clip, "frames", span), r.read(clip, "mfcc_cran", span)


def test_shapes_on_real_sequences_of_different_lengths(s1_shard8, one_thread):
    """Generator, frame D and sequence D on the first T frames of a real clip, T = 3, 7, 12: one frame
    per audio window, one logit per frame (frame D) and one per sequence whatever T (sequence D), the
    pooled vector of the same size for every T."""
    cfg = SdganConfig.from_dict(NATIVE)
    torch.manual_seed(0)
    G, FD = SdganGenerator(cfg).eval(), FrameDiscriminator(cfg.size, cfg.frame_discriminator)
    SD = SequenceDiscriminator(cfg.size, cfg.audio_shape, cfg.sequence_discriminator)
    frames, mfcc = _clip(s1_shard8, TRAIN_CLIPS[0], 12)
    video = frames_to_tensor(frames).unsqueeze(0)                     # (1, 12, 3, 64, 64)
    audio = torch.from_numpy((mfcc - mfcc.mean((0, 1))) / mfcc.std((0, 1)))[None].float()  # (1, 12, 35, 12)
    pooled_sizes = set()
    with torch.no_grad():
        code, skips = G.encode_reference(video[:, 0])
        assert code.shape == (1, 50) and bool((code.abs() < 1).all())
        assert [tuple(s.shape[1:]) for s in skips] == [(8, 32, 32), (16, 16, 16), (32, 8, 8), (64, 4, 4)]
        for T in (3, 7, 12):
            fake, (h_audio, h_noise) = G(video[:, 0], audio[:, :T])
            assert fake.shape == (1, T, 3, 64, 64) and bool((fake.abs() <= 1).all())
            assert h_audio.shape == (2, 1, 32) and h_noise.shape == (2, 1, 10)
            assert FD(fake[0], video[0, :T]).shape == (T, 1)
            for clip_frames in (video[:, :T], fake):
                out = SD(clip_frames, audio[:, :T])
                assert out["logits"].shape == (1, 1) and out["sequence"].shape == (1, T, 24)
                assert bool(torch.isfinite(out["logits"]).all())
                pooled_sizes.add(out["pooled"].shape)
        two = SD(torch.cat([video[:, :7], video[:, 5:12]]), torch.cat([audio[:, :7], audio[:, 5:12]]))
        assert two["logits"].shape == (2, 1)
    assert pooled_sizes == {torch.Size([1, 24 * 7])}  # levels 1 + 2 + 4 bins


def test_pyramid_pooling_size_does_not_depend_on_length(s1_shard8):
    """1-D SPP over a real clip's MFCC sequence (75 frames × 420 values): (1, 420 · 7) for every
    length, shorter than the finest level included; the coarsest bin is the max over all frames and the
    two bins of level 2 the max over each half."""
    _, mfcc = _clip(s1_shard8, HELD_OUT_CLIPS[0])
    seq = torch.from_numpy(mfcc.reshape(len(mfcc), -1))[None]        # (1, 75, 420)
    spp = TemporalPyramidPool((1, 2, 4))
    for T in (1, 2, 3, 7, 12, 40, 75):
        out = spp(seq[:, :T])
        assert out.shape == (1, 420 * 7), T
        assert torch.equal(out[0, :420], seq[0, :T].amax(0))
        if T % 2 == 0:
            assert torch.equal(out[0, 420:840], seq[0, :T // 2].amax(0))
            assert torch.equal(out[0, 840:1260], seq[0, T // 2:T].amax(0))
    assert TemporalPyramidPool((1, 3), "avg")(seq).shape == (1, 420 * 4)
    with pytest.raises(ValueError, match="T >= 1"):
        spp(seq[:, :0])


def test_settings_are_checked():
    with pytest.raises(ValueError, match="unknown model keys"):
        make_recipe("sdgan", {"image_size": 64, "id_code_size": 50}, {}, [{"steps": 1}])
    with pytest.raises(ValueError, match="unknown model.sequence_discriminator keys"):
        make_recipe("sdgan", {"image_size": 64, "sequence_discriminator": {"spp": [1, 2]}}, {}, [{"steps": 1}])
    with pytest.raises(ValueError, match="unknown training keys"):
        make_recipe("sdgan", {"image_size": 64}, {"g_lr": 1e-3}, [{"steps": 1}])
    with pytest.raises(ValueError, match="power of two"):
        make_recipe("sdgan", {"image_size": 96}, {}, [{"steps": 1}])
    with pytest.raises(ValueError, match="skips"):
        make_recipe("sdgan", {"image_size": 64, "net_size": 16}, {}, [{"steps": 1}])
    with pytest.raises(ValueError, match="seq_adv needs sequence"):
        make_recipe("sdgan", {"image_size": 64}, {}, [{"steps": 1, "discriminators": ["frame"], "losses": {"seq_adv": 1.0}}])
    r = make_recipe("sdgan", {"image_size": 64}, {}, [{"steps": 1}])
    assert r.training.lr == 2e-3 and r.training.d_lr == 2e-5  # §IV
    assert r.phases[0].active() == {"frame_adv": 1.0, "seq_adv": 1.0}


def test_overfit_one_real_clip_then_generate_any_length(s1_shard8, tmp_path, one_thread):
    """Two phases through the phase runner on one real clip (reconstruction, then both discriminators
    on), networks at 32² resized to the shard's 64²: the lower-face L1 falls at least 2.5-fold over
    phase 1 (measured: 0.41 → 0.09;
    lower-face error of the generated clip 48 → 20 of 255), the generated lower face comes closer to the real one,
    and the checkpoint, loaded by a2v.inference.load_generator as `a2v generate` loads it, makes
    a 37-frame clip (not a multiple of the 8-frame training windows) whose frames do not depend on the
    chunk size the GRUs run in, nor, exactly, on how a stream of features is chunked."""
    from a2v.inference import load_generator
    from a2v.training.checkpoint import load_checkpoint
    from a2v.training.loop import train_phase

    clip = TRAIN_CLIPS[0]
    phases = [{"name": "reconstruction", "steps": 40, "discriminators": [], "losses": {"l1_lower": 1.0}},
              {"name": "adversarial", "steps": 4, "discriminators": ["frame", "sequence"],
               "losses": {"frame_adv": 1.0, "seq_adv": 1.0, "l1_lower": 100.0}}]
    training = {"batch_size": 2, "sequence_length": 8, "frame_samples": 2, "log_every": 5, "checkpoint_every": 1000}
    config = {"model_type": "sdgan", "model": HALF, "training": training, "phases": phases}
    recipe = make_recipe("sdgan", HALF, training, phases)
    real, mfcc = _clip(s1_shard8, clip)

    def lower_error(networks, state) -> float:
        fake = recipe.generate(networks, state, real[0], {"mfcc_cran": mfcc})
        return float(np.abs(fake[:, 32:].astype(np.float32) - real[:, 32:]).mean())

    torch.manual_seed(0)
    fresh = {k: v.eval() for k, v in recipe.build().items()}
    before = lower_error(fresh, recipe.fit_state([(s1_shard8, clip)]))
    init = None
    for k in range(2):
        init = train_phase(config, [str(s1_shard8)], [(s1_shard8, clip)], k, tmp_path / f"phase{k + 1}", init, log=lambda m: None)
    rows = (tmp_path / "phase1" / "losses.csv").read_text().splitlines()
    col = rows[0].split(",").index("g_l1_lower")
    l1 = [float(r.split(",")[col]) for r in rows[1:]]
    print(f"phase 1 lower-face L1 (in [-1, 1] units): {l1[0]:.3f} -> {l1[-1]:.3f}")
    assert l1[-1] < l1[0] / 2.5
    header = (tmp_path / "phase2" / "losses.csv").read_text().splitlines()[0].split(",")
    assert {"g_frame_adv", "g_seq_adv", "d_frame", "d_sequence"} <= set(header)

    model = load_generator(init)
    assert model.recipe.name == "sdgan" and model.feature_keys == ("mfcc_cran",) and model.image_size == 64
    assert load_checkpoint(init)["state"]["audio_norm"]["mean"].shape == (12,)
    after = lower_error(model.networks, model.state)
    print(f"lower-face mean abs error on the training clip (0-255): {before:.1f} -> {after:.1f}")
    assert after < 0.6 * before
    ref = real[0]
    with ShardReader(s1_shard8) as r:  # an unseen clip's audio, 37 frames
        audio = r.read(HELD_OUT_CLIPS[1], "mfcc_cran", slice(0, 37))
    whole = model.generate(ref, {"mfcc_cran": audio}, batch=64)
    chunked = model.generate(ref, {"mfcc_cran": audio}, batch=5)
    assert whole.shape == (37, 64, 64, 3) and whole.dtype == np.uint8
    assert int(np.abs(whole.astype(np.int16) - chunked).max()) <= 1
    cuts = [0, 3, 4, 20, 37]  # a2v generate's stream: uneven chunks of features in, the same frames out
    blocks = list(model.generate_stream(ref, [{"mfcc_cran": audio[a:b]} for a, b in zip(cuts, cuts[1:])], batch=5))
    assert [len(b) for b in blocks] == [5] * 7 + [2] and np.array_equal(np.concatenate(blocks), chunked)
    assert np.array_equal(model.generate(ref, {"mfcc_cran": audio}, batch=5), chunked)  # same seed, same frames
    assert not np.array_equal(model.generate(ref, {"mfcc_cran": audio}, seed=1), whole)  # the noise moves the face
    with pytest.raises(ValueError, match="mfcc_cran"):
        model.generate(ref, {"mfcc": audio})
    with pytest.raises(ValueError, match=r"\(64, 64, 3\)"):
        model.generate(resize_frames(real[:1], 32)[0], {"mfcc_cran": audio})


def test_resume_from_last_pt_equals_the_uninterrupted_run(s1_shard, tmp_path, one_thread):
    """SDGAN draws noise from torch's global RNG at every step: a phase stopped after its step-10
    ``last.pt`` and run again must reach the same weights as one run straight through (the RNG
    state is set back after the loss networks and the loader have drawn from it)."""
    from a2v.training.checkpoint import load_checkpoint
    from a2v.training.loop import train_phase
    from conftest import SHARD_CLIPS

    config = {"model_type": "sdgan", "model": SDGAN_HALF, "preprocess": {"sample_rate": 16000, "fps": 25.0},
              "training": {"batch_size": 2, "sequence_length": 8, "frame_samples": 2, "log_every": 5, "checkpoint_every": 5},
              "phases": [{"name": "r", "steps": 20, "discriminators": [], "losses": {"l1_lower": 1.0}}]}
    clips = [(str(s1_shard), c) for c in SHARD_CLIPS]

    class Stop(Exception):
        pass

    def stop_at_10(message: str) -> None:
        if "saved" in message and "step 10/" in message:
            raise Stop

    straight = load_checkpoint(train_phase(config, [str(s1_shard)], clips, 0, tmp_path / "straight", log=lambda m: None))
    with pytest.raises(Stop):
        train_phase(config, [str(s1_shard)], clips, 0, tmp_path / "stopped", log=stop_at_10)
    messages = []
    resumed = load_checkpoint(train_phase(config, [str(s1_shard)], clips, 0, tmp_path / "stopped", log=messages.append))
    assert any("resuming from" in m and "at step 10/20" in m for m in messages)
    for name, weights in straight["networks"].items():
        for key, value in weights.items():
            assert torch.equal(value, resumed["networks"][name][key]), (name, key)
