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
from a2v.metrics.wer import word_error_rate
from a2v.judges import GrammarDecoder, LipReader, SyncScorer, clip_sentence, greedy_decode
from a2v.judges.lipreader import LIPNET
from a2v.judges.syncnet import SYNCNET
from a2v.models.lipreader import LipNet, LipNetConfig, encode_text
from a2v.models.syncnet import SyncNet, SyncNetConfig, contrastive_loss
from a2v.training.checkpoint import load_checkpoint
from a2v.training.lipreader import (
    WORD_MARGIN,
    MouthClipDataset,
    WordOrSentenceSampler,
    jitter_frames,
    load_mouth_clips,
    train_lipreader,
)
from a2v.training.syncnet import train_syncnet
from conftest import HELD_OUT_CLIPS, TRAIN_CLIPS

TRAIN = TRAIN_CLIPS
HELD_OUT = HELD_OUT_CLIPS[0]


@pytest.fixture(scope="module")
def shard(s1_shard8) -> Path:
    return s1_shard8


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


def _ctc_path(sentence: str, frames_per_char: int = 2, lead: int = 3, p: float = 0.6) -> np.ndarray:
    """(T, 28) log-probabilities of a CTC path spelling ``sentence``: each character ``frames_per_char``
    frames then a blank, probability ``p`` on the path and the rest spread evenly."""
    seq = [0] * lead
    for k in encode_text(sentence):
        seq += [k] * frames_per_char + [0]
    out = np.full((len(seq), 28), (1 - p) / 27)
    out[np.arange(len(seq)), seq] = p
    return np.log(out)


def test_grid_grammar_decoder_known_answers():
    g = GrammarDecoder.grid()
    for sentence in ["bin blue at f two now", "set green with e three soon", "lay red by a seven again", "place white in z zero please"]:
        assert g.decode(_ctc_path(sentence)) == sentence  # double letters (gr-ee-n, s-oo-n) need their blank
    # misspelt paths snap to the nearest grammatical sentence; greedy decoding keeps the spelling
    bent = _ctc_path("bim blu at f twa now")
    assert greedy_decode(torch.from_numpy(bent)[:, None]) == ["bim blu at f twa now"]
    assert g.decode(bent) == "bin blue at f two now"
    with pytest.raises(ValueError, match="too few"):
        g.decode(np.log(np.full((5, 28), 1 / 28)))
    with pytest.raises(ValueError, match="a–z"):
        GrammarDecoder([["bin"], ["Blue"]])


def test_lipnet_batch_with_lengths_matches_single_clips():
    """Padding never leaks into a shorter clip's output: the Bi-GRU runs on packed sequences."""
    torch.manual_seed(0)
    net = LipNet(LipNetConfig(mouth_width=48, mouth_height=24, channels=(8, 8, 8), gru_hidden=8)).eval()
    # a frame-wise front end (the STCNN's temporal kernels see neighbouring frames by design)
    net.stcnn = torch.nn.Sequential(torch.nn.Conv3d(3, 8, 1), torch.nn.AdaptiveAvgPool3d((None, 1, 3)))
    a, b = torch.randn(1, 3, 12, 24, 48), torch.randn(1, 3, 7, 24, 48)
    padded = torch.cat([a, torch.cat([b, b[:, :, -1:].expand(-1, -1, 5, -1, -1)], 2)])
    out = net(padded, torch.tensor([12, 7]))
    assert torch.allclose(out[:, 0], net(a)[:, 0], atol=1e-5)
    assert torch.allclose(out[:7, 1], net(b)[:, 0], atol=1e-5)
    assert not torch.allclose(net(padded)[:7, 1], net(b)[:, 0], atol=1e-3)  # without lengths the padding leaks back


def test_lipreader_instances_words_jitter_and_sampler(shard):
    """Word instances are cut at the shard's alignment times; jitter and flips are reproducible per draw."""
    clip = load_mouth_clips([(shard, TRAIN[0])], 48, 24)[0]
    assert clip.sentence == "bin green by n eight now"
    # bgbn8n.align: "bin" 20500–25250 /25000 s → frames 20.5–25.25 → [20, 26)
    assert [w for _, _, w in clip.word_frames] == clip.sentence.split() and clip.word_frames[0] == (20, 26, "bin")
    data = MouthClipDataset([clip], flip=True, frame_jitter=0.0)
    whole, word = data[(0, 3, False)], data[(0, 3, True)]
    assert whole["sentence"] == clip.sentence and whole["video"].shape == (3, len(clip.mouths), 24, 48)
    start, end, text = next(s for s in clip.word_frames if s[2] == word["sentence"])
    assert word["video"].shape[1] == min(end + WORD_MARGIN, len(clip.mouths)) - max(start - WORD_MARGIN, 0)
    assert word["target"].tolist() == encode_text(text)
    jittered = MouthClipDataset([clip], flip=True, frame_jitter=0.05)
    assert torch.equal(jittered[(0, 11, False)]["video"], jittered[(0, 11, False)]["video"])
    idx = jitter_frames(1000, 0.05, np.random.default_rng(0))
    assert 0.9 < len(np.unique(idx)) / 1000 < 0.99 and 0.02 < (np.diff(idx) == 0).mean() < 0.09 and (np.diff(idx) >= 0).all()
    sampler = WordOrSentenceSampler(10, 4, 0, 0, 200, word_prob=0.5)
    batches = list(sampler)
    assert all(len({w for _, _, w in b}) == 1 for b in batches)  # a batch is all words or all sentences
    assert 0.35 < np.mean([b[0][2] for b in batches]) < 0.65
    assert list(WordOrSentenceSampler(10, 4, 0, 150, 200, word_prob=0.5)) == batches[150:]  # resuming reproduces


LIP_STEPS = 150


def test_lipreader_learns_its_training_sentences(shard, tmp_path):
    """CTC on two real clips: the loss falls and the lip-reader spells its training sentences better than chance."""
    section = {"model": {"mouth_width": 48, "mouth_height": 24, "channels": [16, 32, 48], "gru_hidden": 64, "dropout": 0.0},
               "training": {"batch_size": 2, "lr": 3e-3, "steps": LIP_STEPS, "log_every": 10, "checkpoint_every": 1000, "flip": False,
                            "word_prob": 0.0, "frame_jitter": 0.0}}
    clips = [(shard, c) for c in TRAIN[:2]]
    path = train_lipreader(section, clips, tmp_path, log=lambda m: None)
    state = load_checkpoint(path, recipe=LIPNET)
    assert set(state["networks"]) == {"lipnet"} and set(state["optimizers"]) == {"adam"}  # the phase runner's format
    rows = (tmp_path / "losses.csv").read_text().splitlines()[1:]
    first, last = float(rows[0].split(",")[1]), float(rows[-1].split(",")[1])
    reader = LipReader.load(path)
    with ShardReader(shard) as r:
        frames = [r.read(c, "frames") for c in TRAIN[:2]]
        refs = [clip_sentence(r.clip_attrs(c)["words"]) for c in TRAIN[:2]]
    grammar, greedy = reader.read_lips(frames), reader.read_lips(frames, "greedy")
    wer_grammar, wer_greedy = 100 * word_error_rate(refs, grammar), 100 * word_error_rate(refs, greedy)
    print(f"lip-reader CTC {first:.2f} -> {last:.2f}; training WER {wer_grammar:.1f} % (grammar), {wer_greedy:.1f} % (greedy): {grammar}")
    assert last < first / 3
    assert state["train_wer"] == pytest.approx(wer_grammar) and state["config"]["model"]["decoder"] == "grid_grammar"
    assert wer_grammar < 50.0 and wer_grammar <= wer_greedy
    assert all(len(t.split()) == 6 for t in grammar)  # the grammar decoder always says a GRID sentence
    with pytest.raises(ValueError, match="decoder must be one of"):
        reader.read_lips(frames, "beam")
    # a bare state dict (an externally trained LipNet) loads with the default sizes, BatchNorm or not
    for bn in (True, False):
        torch.save(LipNet(LipNetConfig(batch_norm=bn)).state_dict(), tmp_path / "bare.pt")
        assert LipReader.load(tmp_path / "bare.pt").cfg.batch_norm is bn
    # a checkpoint of the legacy a2v-lipnet format, written before batch_norm was a setting: its weights say it has none
    model_config = state["config"]["model"]
    old = {"format": "a2v-lipnet", "format_version": 1, "model": LipNet(LipNetConfig(**{**model_config, "batch_norm": False})).state_dict(),
           "model_config": {k: v for k, v in model_config.items() if k != "batch_norm"}}
    torch.save(old, tmp_path / "old.pt")
    assert LipReader.load(tmp_path / "old.pt").cfg.batch_norm is False
    with pytest.raises(ValueError, match="not an a2v lip-reader checkpoint"):
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
    assert load_checkpoint(path, recipe=SYNCNET)["identity"]["train_clips"][0][1] == TRAIN[0]
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
