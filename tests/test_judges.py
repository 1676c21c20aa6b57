"""The metric networks trained by the pipeline on real GRID clips: the LipNet lip-reader (WER) and
SyncNet (LSE-C/D), with known-answer checks.

Shard: six real s1 clips of the embedded sample at 64×64, made by the pipeline's own stages.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from a2v.face.mouth import mouth_box, mouth_crops
from a2v.features.shard import ShardReader
from a2v.metrics.sync import lse, offset_distances, video_windows
from a2v.models.lipreader import LipNet, LipNetConfig, encode_text, greedy_decode
from a2v.models.syncnet import SyncNet, SyncNetConfig, contrastive_loss
from a2v.training.checkpoint import load_checkpoint
from a2v.training.lipreader import LIPNET_FORMAT, LipReader, clip_sentence, train_lipreader
from a2v.training.syncnet import SYNCNET_FORMAT, SyncScorer, train_syncnet
from conftest import demo_config, make_corpus

TRAIN = ["bgbn8n", "lgbgzp", "pbai5s", "lgbm3s", "swbc3a", "sbit3s"]
HELD_OUT = "pwbd8p"


@pytest.fixture(scope="module")
def shard(tmp_path_factory) -> Path:
    from a2v.stages.preprocess import build_shards

    corpus = make_corpus(tmp_path_factory.mktemp("corpus"), {"s1": TRAIN + [HELD_OUT]})
    out = tmp_path_factory.mktemp("results")
    return build_shards(demo_config(corpus, out, 64), "grid", out)["s1"]


# ------------------------------------------------------------------------------------- mouths
def test_mouth_crops_cut_the_template_mouth(shard):
    with ShardReader(shard) as r:
        frames = r.read(TRAIN[0], "frames")
    left, top, right, bottom = mouth_box(64)
    assert (right - left) == pytest.approx(2 * (bottom - top)) and 0 < left < right < 64 and 32 < top < bottom < 64
    m = mouth_crops(frames, 100, 50)
    assert m.shape == (len(frames), 50, 100, 3) and m.dtype == np.uint8
    # the mouth moves while speaking: frame-to-frame change in the mouth box exceeds that of the forehead
    forehead = frames[:, 8:20, 20:44].astype(np.float32)
    assert np.abs(np.diff(m.astype(np.float32), axis=0)).mean() > np.abs(np.diff(forehead, axis=0)).mean()
    with pytest.raises(ValueError, match="aligned crops"):
        mouth_crops(frames[:, :, :32])


# -------------------------------------------------------------------------------------- LipNet
def test_text_codes_and_greedy_ctc_known_answer():
    assert encode_text("Bin  blue") == [3, 10, 15, 1, 3, 13, 22, 6]  # 0 blank, 1 space, 2 a, 3 b, …
    with pytest.raises(ValueError, match="cannot spell"):
        encode_text("bin 4")
    # frames: b b _ i n n _ n ␣ ␣ _ → repeats merged, blanks dropped, but "n _ n" is two n's: "binn"
    seq = [3, 3, 0, 10, 15, 15, 0, 15, 1, 1, 0]
    logp = torch.full((len(seq), 1, 28), -10.0)
    for t, k in enumerate(seq):
        logp[t, 0, k] = 0.0
    assert greedy_decode(logp) == ["binn"]
    assert greedy_decode(logp, torch.tensor([5])) == ["bin"]
    assert clip_sentence(["sil", "bin", "blue", "sp", "at", "f", "two", "now", "sil"]) == "bin blue at f two now"


@pytest.mark.parametrize("size", [(100, 50), (48, 24)])
def test_lipnet_shapes(size):
    w, h = size
    net = LipNet(LipNetConfig(mouth_width=w, mouth_height=h, channels=(8, 16, 16), gru_hidden=16))
    out = net(torch.zeros(2, 3, 11, h, w))
    assert out.shape == (11, 2, 28) and out.dtype == torch.float32
    assert torch.allclose(out.exp().sum(-1), torch.ones(11, 2), atol=1e-5)
    with pytest.raises(ValueError, match="LipNet expects"):
        net(torch.zeros(2, 3, 11, h, w + 2))


LIP_STEPS = 150


def test_lipreader_learns_its_training_sentences(shard, tmp_path):
    """CTC on two real clips: the loss falls and the lip-reader spells its training sentences better than chance."""
    section = {"model": {"mouth_width": 48, "mouth_height": 24, "channels": [16, 32, 48], "gru_hidden": 64, "dropout": 0.0},
               "training": {"batch_size": 2, "lr": 3e-3, "steps": LIP_STEPS, "log_every": 10, "checkpoint_every": 1000, "flip": False}}
    clips = [(shard, c) for c in TRAIN[:2]]
    path = train_lipreader(section, clips, tmp_path, log=lambda m: None)
    state = load_checkpoint(path, fmt=LIPNET_FORMAT)
    rows = (tmp_path / "losses.csv").read_text().splitlines()[1:]
    first, last = float(rows[0].split(",")[1]), float(rows[-1].split(",")[1])
    print(f"lip-reader CTC {first:.2f} -> {last:.2f}; training WER {state['train_wer']:.1f} %")
    assert last < first / 3
    assert state["train_wer"] < 100.0
    reader = LipReader.load(path)
    with ShardReader(shard) as r:
        text = reader.read_lips([r.read(TRAIN[0], "frames")])[0]
    assert set(text) <= set(" abcdefghijklmnopqrstuvwxyz")
    with pytest.raises(ValueError, match="not an a2v-lipnet"):
        bad = tmp_path / "bad.pt"
        torch.save({"format": "x", "step": 1}, bad)
        LipReader.load(bad)


# ------------------------------------------------------------------------------------- SyncNet
def test_syncnet_shapes_and_loss():
    net = SyncNet(SyncNetConfig(mouth_width=48, mouth_height=24, channels=(8, 8, 16, 16), embed_dim=16))
    d = net(torch.randn(4, 20, 13), torch.randn(4, 15, 24, 48))
    assert d.shape == (4,) and ((d >= 0) & (d <= 2 + 1e-5)).all()
    assert contrastive_loss(torch.tensor([0.0, 2.0]), torch.tensor([1.0, 0.0])).item() == 0.0
    assert contrastive_loss(torch.tensor([0.5]), torch.tensor([1.0])).item() == pytest.approx(0.25)
    assert contrastive_loss(torch.tensor([0.25]), torch.tensor([0.0])).item() == pytest.approx(0.5625)
    assert video_windows(torch.zeros(9, 3, 24, 48)).shape == (5, 15, 24, 48)
    assert lse(np.array([0.9, 0.5, 0.8, np.nan, 1.0])) == {"lse_d": 0.5, "lse_c": pytest.approx(0.35), "offset": -1.0}


SYNC_STEPS = 400
SHIFT = 10


def test_syncnet_known_answer_on_a_held_out_real_clip(shard, tmp_path):
    """Trained on six real clips, SyncNet finds a held-out clip in sync (offset 0 ± 1) and finds its
    audio shifted by 10 frames at that shift, with the zero-offset distance larger than in sync."""
    section = {"model": {"mouth_width": 48, "mouth_height": 24, "channels": [16, 32, 64, 64], "embed_dim": 64},
               "training": {"batch_size": 32, "steps": SYNC_STEPS, "log_every": 20, "checkpoint_every": 1000}}
    path = train_syncnet(section, [(shard, c) for c in TRAIN], tmp_path, log=lambda m: None)
    scorer = SyncScorer.load(path)
    assert load_checkpoint(path, fmt=SYNCNET_FORMAT)["identity"]["train_clips"][0][1] == TRAIN[0]
    with ShardReader(shard) as r:
        frames, mfcc = r.read(HELD_OUT, "frames"), r.read(HELD_OUT, "mfcc")
    in_sync = scorer.score(frames, mfcc)
    # audio 10 frames late: frame t hears what was said at t - 10 (edges padded with the first window)
    late = np.concatenate([np.repeat(mfcc[:1], SHIFT, axis=0), mfcc[:-SHIFT]])
    shifted = scorer.score(frames, late)
    mouths = torch.from_numpy(mouth_crops(frames, 48, 24)).permute(0, 3, 1, 2).float().div(127.5).sub(1)
    d_sync = offset_distances(scorer.model, mouths, torch.from_numpy(scorer.normalizer.mfcc(mfcc)))
    d_late = offset_distances(scorer.model, mouths, torch.from_numpy(scorer.normalizer.mfcc(late)))
    print(f"in sync: {in_sync}; audio +{SHIFT} frames: {shifted}; D(0) {d_sync[15]:.3f} vs {d_late[15]:.3f}")
    assert abs(in_sync["offset"]) <= 1
    assert abs(shifted["offset"] - SHIFT) <= 1
    assert d_sync[15] < d_late[15]
    assert in_sync["lse_c"] > 0
