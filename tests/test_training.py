"""MAN training on a tiny shard made from real GRID clips: data contract, overfitting, resume after a
kill, phase chaining, inference.

The fixture writes a schema-1 HDF5 shard from ``resources/grid_sample/s1``: 64×64 face crops of the
decoded frames, Farnebäck flow between consecutive crops, librosa MFCC windows and 256-band mel of
frame-centred windows, rough pitch (YIN) and energy (RMS) bins. Heatmaps, landmarks, pose and EAR
are zeros (only their shapes matter here).
"""

from __future__ import annotations

import copy
import csv
from pathlib import Path

import cv2
import h5py
import librosa
import numpy as np
import pytest
import torch

from a2v.errors import ShardSchemaError
from a2v.inference import load_bundle, synthesize
from a2v.io.audio import load_audio
from a2v.io.video import read_frames
from a2v.training import (
    FeatureNormalizer,
    FrameDataset,
    StepBatchSampler,
    fit_normalizer,
    load_checkpoint,
    open_shard,
    parse_config,
    prepare_phase,
    train_phase,
)

GRID = Path(__file__).resolve().parents[1] / "resources" / "grid_sample" / "s1"
SR, FPS, SIZE = 16000, 25, 64
CLIPS = ("bgbn8n", "lgbgzp")


def _clip_arrays(name: str, size: int = SIZE) -> dict[str, np.ndarray]:
    path = GRID / f"{name}.mpg"
    crops = np.stack([cv2.resize(f[40:232, 84:276], (size, size), interpolation=cv2.INTER_AREA) for f in read_frames(path)])
    audio = load_audio(path)
    n = len(crops)
    centres = np.round((np.arange(n) + 0.5) * SR / FPS).astype(int)
    pad = 4000
    y = np.pad(audio, (pad, pad))

    def windows(length: int) -> np.ndarray:
        return y[(centres - length // 2 + pad)[:, None] + np.arange(length)[None]]

    mfcc = librosa.feature.mfcc(y=windows(19 * 160 + 400), sr=SR, n_mfcc=13, n_fft=400, hop_length=160, n_mels=40, center=False)
    w = windows(3200)
    spec = np.abs(np.fft.rfft(w * np.hanning(3200)[None], n=4096)) ** 2
    mel = librosa.power_to_db(spec @ librosa.filters.mel(sr=SR, n_fft=4096, n_mels=256).T, ref=1.0, amin=1e-10, top_db=None)
    rms = np.sqrt((w**2).mean(1))
    energy = np.linalg.norm(w, axis=1)
    energy_bin = np.clip(np.round((np.log(np.maximum(rms, 1e-6)) + 10) / 10 * 255), 0, 255)
    track = librosa.yin(y, fmin=60, fmax=500, sr=SR, frame_length=1024, hop_length=256)
    voiced = rms > 0.2 * rms.max()
    f0 = np.where(voiced, track[np.clip(np.round((centres + pad) / 256).astype(int), 0, len(track) - 1)], 0.0)
    pos = (np.log(np.maximum(f0, 60)) - np.log(60)) / (np.log(500) - np.log(60))
    f0_bin = np.where(voiced, 1 + np.clip(np.round(pos * 254), 0, 254), 0)
    gray = [cv2.cvtColor(c, cv2.COLOR_RGB2GRAY) for c in crops]
    flow = np.zeros((n, 2, size, size), np.float16)
    for t in range(1, n):
        flow[t] = cv2.calcOpticalFlowFarneback(gray[t - 1], gray[t], None, 0.5, 3, 15, 3, 5, 1.2, 0).transpose(2, 0, 1)
    return {
        "frames": crops,
        "landmarks": np.zeros((n, 68, 2), np.float32),
        "pose": np.zeros((n, 3), np.float32),
        "ear": np.zeros((n, 2), np.float32),
        "mfcc": np.ascontiguousarray(mfcc.transpose(0, 2, 1), np.float32),
        "mel": mel.astype(np.float32),
        "f0": f0.astype(np.float32),
        "f0_bin": f0_bin.astype(np.uint8),
        "energy": energy.astype(np.float32),
        "energy_bin": energy_bin.astype(np.uint8),
        "flow": flow,
        "heatmaps": np.zeros((n, 15, 96, 96), np.float16),
    }


def _write_shard(path: Path, clips: dict[str, dict[str, np.ndarray]], size: int, version: int = 1) -> Path:
    with h5py.File(path, "w") as f:
        f.attrs.update(schema_version=version, fps=FPS, sample_rate=SR, crop_size=size)
        group = f.create_group("clips")
        for clip_id, arrays in clips.items():
            g = group.create_group(clip_id)
            for k, v in arrays.items():
                g.create_dataset(k, data=v)
    return path


@pytest.fixture(scope="module")
def shard(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("features")
    return _write_shard(root / "s1.h5", {c: _clip_arrays(c) for c in CLIPS}, SIZE)


def _config(steps=(6,), **training) -> dict:
    cfg = {
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


def test_shard_schema_version_is_checked(tmp_path):
    bad = _write_shard(tmp_path / "old.h5", {}, SIZE, version=0)
    with pytest.raises(ShardSchemaError, match="schema_version"):
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
    bad["phases"] = [{"name": "a", "steps": 2, "discriminator": False, "losses": {"adv": 1.0}}]
    with pytest.raises(ValueError, match="discriminator"):
        parse_config(bad)
    bad["phases"] = [{"name": "a", "steps": 2, "losses": {"keypoint_mse": 1.0}}]
    with pytest.raises(ValueError, match="keypoint_mse"):
        parse_config(bad)
    parsed = parse_config(_config())
    assert parsed.phases[0].losses == {"adv": 1.0, "l1_lower": 10.0, "fm": 10.0, "cam": 1.0, "flow_mse": 1.0, "keypoint_mse": 0.0}
    assert parsed.training.betas == (0.0, 0.9) and parsed.training.lr == 0.002


# -------------------------------------------------------------------------------------- training
OVERFIT_STEPS = 30
OVERFIT_FACTOR = 2.0  # measured 3.6× (0.489 → 0.137 lower-half L1, mean of the last 5 steps), 2 CPU cores


def test_overfit_one_real_clip(shard, tmp_path):
    cfg = _config(steps=(OVERFIT_STEPS,), batch_size=4, checkpoint_every=1000, reference="first")
    cfg["phases"][0].update(discriminator=False)
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
    for k, v in ref["generator"].items():
        assert torch.allclose(v.float(), state["generator"][k].float(), atol=1e-4), k
    # a complete phase is not rerun
    messages.clear()
    assert train_phase(cfg, [shard], clips, 0, tmp_path, device=torch.device("cpu"), log=messages.append) == final
    assert any("nothing to do" in m for m in messages)


def test_phase2_starts_from_phase1(shard, phase0, tmp_path):
    cfg = _config(steps=(6, 2))
    cfg["phases"][0]["motion_source"] = "predicted"
    ck = load_checkpoint(phase0)
    st = prepare_phase(cfg, [shard], [("s1", "bgbn8n")], 1, tmp_path, init_checkpoint=phase0, device=torch.device("cpu"), log=lambda m: None)
    assert st.start_step == 0 and not st.resumed and st.phase.name == "p1"
    for name, net in (("generator", st.generator), ("predictor", st.predictor), ("discriminator", st.discriminator)):
        for k, v in net.state_dict().items():
            assert torch.equal(v, ck[name][k]), f"{name}.{k}"
    assert st.opt_g.state_dict()["state"][0]["step"] == ck["opt_g"]["state"][0]["step"]
    for k, v in st.normalizer.state_dict().items():
        assert torch.equal(v, ck["normalizer"][k])
    out = train_phase(cfg, [shard], [("s1", "bgbn8n")], 1, tmp_path, init_checkpoint=phase0, device=torch.device("cpu"), log=lambda m: None)
    state = load_checkpoint(out)
    assert state["phase_name"] == "p1" and state["step"] == 2
    assert torch.equal(state["normalizer"]["mel_mean"], ck["normalizer"]["mel_mean"])  # carried, not refitted


def test_checkpoint_loads_weights_only(phase0):
    state = torch.load(phase0, weights_only=True)
    assert state["format"] == "a2v-man" and isinstance(state["a2v_version"], str)
    assert state["config"]["model"]["image_size"] == SIZE


def test_synthesize_real_clip(shard, phase0):
    bundle = load_bundle(phase0, torch.device("cpu"))
    with h5py.File(shard) as f:
        g = f["clips/lgbgzp"]
        feats = {k: g[k][:12] for k in ("mfcc", "mel", "f0_bin", "energy_bin")}
        ref = g["frames"][0]
    video = synthesize(bundle, ref, feats, torch.device("cpu"))
    assert video.shape == (12, SIZE, SIZE, 3) and video.dtype == np.uint8
    assert video.std() > 1.0  # not a constant image
    fast = synthesize(bundle, ref, feats, torch.device("cpu"), batch=4)
    assert fast.shape == video.shape and np.array_equal(fast[0], video[0])  # first block shares exact history
    bad = dict(feats, mel=feats["mel"][:10])
    with pytest.raises(ValueError, match="lengths"):
        synthesize(bundle, ref, bad, torch.device("cpu"))
    with pytest.raises(ValueError, match="reference"):
        synthesize(bundle, ref[:32], feats, torch.device("cpu"))
    with pytest.raises(ValueError, match="mfcc"):
        synthesize(bundle, ref, dict(feats, mfcc=feats["mfcc"][:, :, :12]), torch.device("cpu"))


def test_keypoint_variant_trains_and_synthesizes(shard, tmp_path):
    cfg = _config(steps=(2,))
    cfg["model"]["motion"] = "keypoints"
    cfg["model"]["audio_branch"] = "conv1d"
    cfg["phases"][0].update(motion_source="predicted", discriminator=False)
    out = train_phase(copy.deepcopy(cfg), [shard], [("s1", "bgbn8n")], 0, tmp_path, device=torch.device("cpu"), log=lambda m: None)
    rows = _rows(tmp_path / "losses.csv")
    assert "g_keypoint_mse" in rows[0] and "rho_keypoints" in rows[0]
    bundle = load_bundle(out)
    with h5py.File(shard) as f:
        g = f["clips/bgbn8n"]
        feats = {k: g[k][:3] for k in ("mfcc", "mel", "f0_bin", "energy_bin")}
        ref = g["frames"][5]
    assert synthesize(bundle, ref, feats).shape == (3, SIZE, SIZE, 3)
