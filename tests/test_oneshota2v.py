"""OneShotA2V (a2v.recipes.oneshota2v) on real GRID clips of resources/grid_sample: the
discriminators' shapes on clips of different lengths, the sync discriminator pretrained by its own
rule, one-shot fine-tuning, and a short three-phase run on one real clip through the phase runner."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from a2v.features.shard import ShardReader
from a2v.features.windows import frames_to_tensor, resize_frames
from a2v.models.discriminators import MultiScalePatchGAN
from a2v.models.syncnet import SyncNet, SyncNetConfig
from a2v.models.temporal_discriminator import TemporalDiscriminator, TemporalDiscriminatorConfig, sliding_windows
from a2v.recipes import make_recipe
from a2v.training.checkpoint import load_checkpoint
from a2v.training.loop import train_phase
from a2v.training.sync_discriminator import SyncDiscriminator, load_sync_discriminator, train_sync_discriminator
from conftest import HELD_OUT_CLIPS, TRAIN_CLIPS

SMALL_MODEL = {
    "image_size": 32, "base_channels": 16, "max_channels": 64, "spade_hidden": 32,
    "content": {"hidden": 16, "out_dim": 32},
    "frame_discriminator": {"base_channels": 16, "n_layers": 2},
    "temporal_discriminator": {"window": 5, "base_channels": 16, "n_layers": 2},
}
SYNC_SECTION = {"model": {"mouth_width": 48, "mouth_height": 24, "channels": [16, 32, 64, 64], "embed_dim": 64},
                "training": {"batch_size": 32, "steps": 400, "log_every": 50, "checkpoint_every": 1000}}


@pytest.mark.parametrize("n_frames", [5, 9, 14])
def test_discriminator_shapes_on_clips_of_different_lengths(s1_shard, n_frames):
    with ShardReader(s1_shard) as r:
        clip = r.clip_ids[0]
        frames = frames_to_tensor(r.read(clip, "frames", slice(0, n_frames)))  # (T, 3, 64, 64)
        mfcc = torch.from_numpy(r.read(clip, "mfcc", slice(0, n_frames)))
    T = n_frames
    ref = frames[:1].expand(T, -1, -1, -1)
    frame_d = MultiScalePatchGAN(3, 6, 16, 3, 64, cam=False)
    outs = frame_d(frames, ref)
    assert [o["logits"].shape[0] for o in outs] == [T] * 3  # one verdict map per frame and scale
    assert outs[0]["logits"].shape[-1] > outs[2]["logits"].shape[-1]
    cfg = TemporalDiscriminatorConfig(window=5, base_channels=16)
    windows = sliding_windows(frames, cfg.window, cfg.step)
    n_windows = int(np.ceil((T - 5) / cfg.step)) + 1
    assert windows.shape == (n_windows, 5, 3, 64, 64)
    assert windows[-1, -1].equal(frames[-1])  # the last window ends on the clip's last frame
    touts = TemporalDiscriminator(cfg)(windows)
    assert len(touts) == 3 and all(o["logits"].shape[:2] == (n_windows, 1) for o in touts)
    sync = SyncDiscriminator(SyncNet(SyncNetConfig(48, 24, channels=(16, 32, 64, 64), embed_dim=64)),
                             _unit_normalizer())
    sub = torch.stack([frames[c - 2:c + 3] for c in range(2, T - 2)])
    d = sync(sub, mfcc[2:T - 2])
    assert d.shape == (T - 4,) and bool(((d >= 0) & (d <= 2.0001)).all())
    with pytest.raises(ValueError, match="shorter than the temporal window"):
        sliding_windows(frames[:4], 5, 2)


def _unit_normalizer():
    from a2v.features.normalizer import FeatureNormalizer

    return FeatureNormalizer(np.zeros(13), np.ones(13), np.zeros(256), np.ones(256))


def test_sync_discriminator_separates_in_sync_from_shifted(s1_shard8, tmp_path, one_thread):
    """Pretrained by its own rule on six real clips (lower half of the face), the sync D gives a
    held-out clip's in-sync windows a smaller distance than the same windows with the audio 10
    frames late. Measured 2026-12-03: mean distance 0.36 in sync vs 0.73 shifted (margin 0.37)."""
    path = train_sync_discriminator(SYNC_SECTION, [(s1_shard8, c) for c in TRAIN_CLIPS], tmp_path, log=lambda m: None)
    ckpt = load_checkpoint(path, recipe="sync_discriminator")
    assert ckpt["config"]["training"]["seed"] == 1  # its own seed: not the LSE judge's 0
    sync, facts = load_sync_discriminator(path)
    with ShardReader(s1_shard8) as r:
        frames = frames_to_tensor(r.read(HELD_OUT_CLIPS[0], "frames"))
        mfcc = torch.from_numpy(r.read(HELD_OUT_CLIPS[0], "mfcc"))
    T, shift = len(frames), 10
    centres = range(2, T - 2 - shift)
    windows = torch.stack([frames[c - 2:c + 3] for c in centres])
    with torch.no_grad():
        d_sync = sync(windows, mfcc[list(centres)]).mean().item()
        d_late = sync(windows, mfcc[[c + shift for c in centres]]).mean().item()
    print(f"sync D on held-out {HELD_OUT_CLIPS[0]}: in sync {d_sync:.3f}, audio +{shift} frames {d_late:.3f}, "
          f"margin {d_late - d_sync:.3f}; training-clip offset share {facts['train_offset_share']:.2f}")
    assert d_late - d_sync > 0.1
    assert not any(p.requires_grad for p in sync.parameters())  # frozen: a loss, never trained by the generator


def _recipe(phases, pretrained=None):
    return make_recipe("oneshota2v", SMALL_MODEL, {"batch_size": 2, "log_every": 5, "checkpoint_every": 1000,
                                                    "perceptual": {"backbone": "vgg16_hed", "layers": ["relu1_2", "relu2_2"]}},
                       phases, pretrained)


def test_phases_name_their_pretrained_networks_and_reject_bad_combinations():
    full = _recipe([{"name": "a", "steps": 1, "discriminators": ["frame"]},
                    {"name": "b", "steps": 1, "discriminators": ["frame", "temporal", "sync"]},
                    {"name": "c", "steps": 1, "discriminators": ["frame", "temporal", "sync"], "losses": {"blink": 1.0}}])
    assert full.needed_pretrained() == ("sync_discriminator", "eye_landmarks")
    assert _recipe([{"name": "a", "steps": 1, "discriminators": ["frame"]}]).needed_pretrained() == ()
    with pytest.raises(ValueError, match="temporal_adv needs temporal"):
        _recipe([{"name": "a", "steps": 1, "discriminators": ["frame"], "losses": {"temporal_adv": 1.0}}])
    with pytest.raises(ValueError, match="unknown networks"):
        _recipe([{"name": "a", "steps": 1}], {"lipnet": {}})
    with pytest.raises(ValueError, match="missing"):
        full.use_pretrained({})


def test_three_phases_on_one_real_clip_then_finetune(s1_shard8, tmp_path, one_thread):
    """The curriculum through the phase runner on one real clip (phase 1 frame D; phase 2 + temporal
    D, sync D, lower-half L1; phase 3 + blink), each phase from the previous checkpoint: the
    generated frames come closer to the real ones than at the start, and the lr decays over phase 3.
    Then one-shot fine-tuning lowers the perceptual loss on a face from a clip it never saw."""
    clip = [(str(s1_shard8), TRAIN_CLIPS[0])]
    pre = {"sample_rate": 16000, "fps": 25.0, "content_encoder": "whisper_tiny_en", "content_pad_to_30s": True}
    sync = train_sync_discriminator({**SYNC_SECTION, "training": {**SYNC_SECTION["training"], "steps": 50}}, clip,
                                    tmp_path / "sync", log=lambda m: None)
    from a2v.training.eye_landmarks import train_eye_landmarks

    eyes = train_eye_landmarks({"model": {"band_width": 48, "band_height": 20, "channels": [16, 32, 64], "hidden": 64},
                                "training": {"steps": 50, "checkpoint_every": 1000}}, clip, tmp_path / "eyes", log=lambda m: None)
    losses = {"adv": 0.1, "fm": 1.0, "perceptual": 0.0, "l1_lower": 10.0}
    phases = [
        {"name": "frame", "steps": 40, "discriminators": ["frame"], "losses": losses},
        {"name": "sync", "steps": 20, "discriminators": ["frame", "temporal", "sync"],
         "losses": {**losses, "temporal_adv": 0.1, "sync": 1.0}},
        {"name": "blink", "steps": 20, "lr_decay": 1.0, "discriminators": ["frame", "temporal", "sync"],
         "losses": {**losses, "temporal_adv": 0.1, "sync": 1.0, "blink": 10.0}},
    ]
    config = {"model_type": "oneshota2v", "model": SMALL_MODEL, "phases": phases, "preprocess": pre,
              "training": {"batch_size": 2, "lr": 2e-3, "log_every": 5, "checkpoint_every": 1000,
                           "perceptual": {"backbone": "vgg16_hed", "layers": ["relu1_2", "relu2_2"]}}}
    recipe = _recipe(phases)
    with ShardReader(s1_shard8) as r:
        real = r.read(TRAIN_CLIPS[0], "frames")
        content = r.read(TRAIN_CLIPS[0], "content")
    import cv2

    real32 = resize_frames(real, 32)

    def error(ckpt) -> float:
        nets = recipe.build()
        state = ckpt["state"] if ckpt else recipe.fit_state(clip)
        if ckpt:
            for k, net in nets.items():
                net.load_state_dict(ckpt["networks"][k])
        for net in nets.values():
            net.eval()
        fake = recipe.generate(nets, state, real32[0], {"content": content})
        return float(np.abs(fake[:, 16:].astype(np.float32) - real32[:, 16:]).mean())

    torch.manual_seed(0)
    before = error(None)
    init = None
    for k in range(3):
        init = train_phase(config, [str(s1_shard8)], [(s1_shard8, TRAIN_CLIPS[0])], k, tmp_path / f"phase{k + 1}", init,
                           log=lambda m: None, pretrained={"sync_discriminator": sync, "eye_landmarks": eyes})
    ckpt = load_checkpoint(init)
    assert ckpt["identity"]["pretrained_checkpoints"]["sync_discriminator"] == str(sync)
    log = (tmp_path / "phase3" / "losses.csv").read_text().splitlines()
    assert "g_blink" in log[0] and "g_sync" in log[0] and "lr" in log[0]
    last_lr = float(log[-1].split(",")[log[0].split(",").index("lr")])
    assert last_lr < 2e-4  # decayed linearly towards 0 over phase 3
    after = error(ckpt)
    print(f"lower-half mean abs error on the training clip: {before:.1f} -> {after:.1f} (0-255)")
    assert after < 0.6 * before

    # one-shot fine-tuning on a face from a clip the model never saw
    nets = recipe.build()
    for k, net in nets.items():
        net.load_state_dict(ckpt["networks"][k])
    with ShardReader(s1_shard8) as r:
        face = resize_frames(r.read(HELD_OUT_CLIPS[1], "frames", 0), 32)
    facts = recipe.finetune(nets, ckpt["state"], face, 8, preprocess=pre)
    print(f"one-shot fine-tuning: perceptual {facts['perceptual_before']:.4f} -> {facts['perceptual_after']:.4f}")
    assert facts["perceptual_after"] < facts["perceptual_before"]
    again = recipe.finetune(nets, ckpt["state"], face, 2, preprocess=pre)  # a second face after the first (generate_test)
    assert again["perceptual_after"] <= again["perceptual_before"]
    whole = recipe.generate(nets, ckpt["state"], face, {"content": content}, batch=8)  # a stream of chunks, the same frames
    streamed = recipe.generate_stream(nets, ckpt["state"], face, [{"content": content[:11]}, {"content": content[11:]}], batch=8)
    assert np.array_equal(np.concatenate(list(streamed)), whole)

    # a2v generate: a photo that is not from GRID + an unseen speaker's audio, fine-tuned by default
    # (training.finetune_steps: 5, §5), content features computed from the audio as the features stage does
    from skimage import data

    from a2v.generate import generate_video
    from a2v.io.video import probe_video, read_frames

    image = tmp_path / "astronaut.png"
    cv2.imwrite(str(image), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    lines: list[str] = []
    out = generate_video(image, _unseen_clip(), init,  # the features in chunks of 30 frames
                         tmp_path / "astronaut.mp4", device="cpu", log=lines.append, chunk_frames=30)
    assert abs(len(read_frames(out)) - 75) <= 1 and probe_video(out).has_audio
    assert any(line.startswith("one-shot fine-tuning: 5 steps") for line in lines), lines

    # generate-test: an unseen speaker's clip is also generated after one-shot fine-tuning on its
    # reference frame (variant "oneshot"), and the weights are restored before the next clip
    import pandas as pd

    from a2v.stages import generate_test

    split = tmp_path / "split.tsv"
    pd.DataFrame([{"dataset": "grid", "speaker": "s1", "clip_id": HELD_OUT_CLIPS[1], "split": "test_unseen"},
                  {"dataset": "grid", "speaker": "s1", "clip_id": HELD_OUT_CLIPS[0], "split": "test"}]).to_csv(split, sep="\t", index=False)
    listing = pd.read_csv(generate_test.run({}, init, split, [s1_shard8], tmp_path / "videos", device="cpu"), sep="\t",
                          dtype={"clip_id": str}).fillna("")
    assert listing[["clip_id", "variant"]].values.tolist() == [[HELD_OUT_CLIPS[1], ""], [HELD_OUT_CLIPS[1], "oneshot"], [HELD_OUT_CLIPS[0], ""]]
    plain, tuned, after = (read_frames(f).astype(np.float32) for f in listing["frames"])
    print(f"one-shot variant differs from the plain video by {np.abs(tuned - plain).mean():.2f} (0-255)")
    assert np.abs(tuned - plain).mean() > 0.1
    seen = tmp_path / "seen.tsv"
    pd.read_csv(split, sep="\t").iloc[1:].to_csv(seen, sep="\t", index=False)
    again = generate_test.run({}, init, seen, [s1_shard8], tmp_path / "videos2", device="cpu")
    fresh = read_frames(pd.read_csv(again, sep="\t", dtype={"clip_id": str}).iloc[0]["frames"]).astype(np.float32)
    assert np.array_equal(after, fresh)  # the seen clip after a fine-tuned one = from the trained weights


def _unseen_clip():
    from conftest import GRID_SAMPLE

    return sorted((GRID_SAMPLE / "s2").glob("*.mpg"))[0]


def test_whisper_encoder_inside_the_model_fine_tuned_or_frozen(s1_shard8, tmp_path, one_thread):
    """``model.content.kind: whisper``: Whisper tiny.en's encoder runs inside the model on the shard's
    ``content_mel`` (a segment of the window's span + 1 s each side). Each frame's 200 ms lands on
    the encoder frames of its own time (closer to the 30-s-padded ``content`` of the same frame than
    to a 100-ms shift); ``finetune: true`` trains the encoder with the generator, ``false`` leaves it
    as loaded; the checkpoint generates any number of frames from an unseen speaker's log-mel."""
    from a2v.audio.content import clip_log_mel
    from a2v.features.windows import ClipWindows
    from a2v.inference import load_generator
    from a2v.io.audio import load_audio

    windows = ClipWindows([s1_shard8], 5, 1, ("content_mel", "content"), clip_ids=[TRAIN_CLIPS[0]])
    sample = windows[30]
    assert sample["content_mel"].shape == (20 + 2 * 100, 80)  # 5 frames at 25 fps = 20 rows, + 1 s each side
    assert sample["content_index"].tolist() == [46, 48, 50, 52, 54]  # 1 s of context = 50 encoder frames
    model = {**SMALL_MODEL, "content": {"kind": "whisper", "hidden": 16, "out_dim": 32, "finetune": True}}
    recipe = make_recipe("oneshota2v", model, {"batch_size": 2}, [{"name": "a", "steps": 1}])
    encoder = recipe.build()["content"].encoder
    with torch.no_grad():
        feats = encoder(sample["content_mel"][None].transpose(1, 2))[0].numpy()  # (110, 384)

    def cosine(shift: int) -> float:
        got = np.stack([feats[i + shift:i + shift + 10] for i in sample["content_index"].tolist()])
        ref = sample["content"].numpy()
        return float(np.mean(np.sum(got * ref, -1) / np.linalg.norm(got, axis=-1) / np.linalg.norm(ref, axis=-1)))

    aligned, early, late = cosine(0), cosine(-5), cosine(5)
    print(f"cosine to the padded encoder's frames: aligned {aligned:.3f}, 100 ms early {early:.3f}, late {late:.3f}")
    assert aligned > max(early, late) + 0.05

    clip = [(str(s1_shard8), TRAIN_CLIPS[0])]
    phases = [{"name": "a", "steps": 6, "discriminators": ["frame"], "losses": {"adv": 0.1, "fm": 1.0, "perceptual": 0.0, "l1_lower": 10.0}}]
    loaded = {k: v.clone() for k, v in encoder.state_dict().items()}
    moved = {}
    for finetune in (True, False):
        cfg = {"model_type": "oneshota2v", "model": {**model, "content": {**model["content"], "finetune": finetune}},
               "phases": phases, "preprocess": {"sample_rate": 16000, "fps": 25.0},
               "training": {"batch_size": 2, "lr": 2e-3, "log_every": 2, "checkpoint_every": 1000}}
        path = train_phase(cfg, [str(s1_shard8)], clip, 0, tmp_path / f"ft{finetune}", None, log=lambda m: None)
        weights = load_checkpoint(path)["networks"]["content"]
        moved[finetune] = max(float((weights[f"encoder.{k}"] - v).abs().max()) for k, v in loaded.items())
    print(f"largest change of an encoder weight: fine-tuned {moved[True]:.2e}, frozen {moved[False]:.2e}")
    assert moved[True] > 1e-4 and moved[False] == 0.0

    gen = load_generator(tmp_path / "ftTrue" / "checkpoint.pt")
    mel = clip_log_mel(load_audio(_unseen_clip(), 16000), 16000, 25.0, 0, 73)
    with ShardReader(s1_shard8) as r:
        face = resize_frames(r.read(HELD_OUT_CLIPS[1], "frames", 0), 32)
    video = gen.generate(face, {"content_mel": mel})
    assert video.shape == (73, 32, 32, 3) and video.std() > 1
    streamed = list(gen.generate_stream(face, [{"content_mel": mel[:101]}, {"content_mel": mel[101:]}]))
    assert np.array_equal(np.concatenate(streamed), video)
