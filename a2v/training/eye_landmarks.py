"""Training the eye-landmark regressor (:mod:`a2v.models.eye_landmarks`) behind OneShotA2V's blink
loss (OneShotA2V §4.1.6, curriculum phase 3: L1 between the EAR of the real and the generated
frame; EAR of Soukupova & Cech 2016).

Samples are single frames of real clips: the aligned crop (shard ``frames``, RGB [-1, 1]) and its
12 dlib eye landmarks (shard ``landmarks[:, 36:48]``, crop pixels); frames whose eye landmarks are
not finite are left out. The mean training shape is set into the net before the first step.

**a2v:** the loss is the mean L1 distance in crop pixels over the 24 coordinates, plus
``ear_weight`` × the mean |EAR(predicted) − EAR(dlib)| (:func:`a2v.models.eye_landmarks.ear_torch`),
the quantity the blink loss compares; Adam. Augmentation (**a2v:**): with ``flip`` a sample is
mirrored left-right (landmarks mirrored and their eyes swapped, :data:`MIRROR`) on odd draws; the
aligned template is symmetric, so a mirrored crop is still aligned. Run by the phase runner every
model uses (:class:`a2v.training.runner.PhaseRunner`) as one phase: recipe ``"eye_landmarks"``,
network ``eye_landmarks``, optimiser ``adam``; it resumes from ``last.pt`` and returns a complete
``checkpoint.pt`` of the same settings and clips without training.

Config (top-level ``eye_landmarks`` section)::

    eye_landmarks:
      model: {band: [0.20, 0.28, 0.80, 0.52], band_width: 96, band_height: 40,
              channels: [16, 32, 64, 96], hidden: 128}
      training: {batch_size: 32, lr: 1.0e-3, steps: 3000, seed: 0, checkpoint_every: 500,
                 log_every: 50, progress_interval: 30.0, flip: true, ear_weight: 1.0}

The final checkpoint also records, on the training clips, ``train_point_error_px`` (mean
Euclidean error of a point, crop pixels), ``train_ear_mae`` and the same two for the mean shape
(``train_baseline_point_error_px``, ``train_baseline_ear_mae``), and ``train_n_frames``.

What to expect: dlib returns whole pixels of the source video, so the labels carry a rounding
error (on GRID at 64 px crops one source pixel is 0.33 crop px: ~0.13 px mean point error and
~0.013 EAR). On 6 GRID s1 clips (300 steps) held-out clips score 0.17 px and EAR MAE 0.019
against 0.26 px and 0.044 for the mean shape (``tests/test_eye_landmarks.py``).

Use in a blink loss: ``net, _ = load_eye_landmarks(path, device)`` (eval mode, frozen), then
``(ear_torch(net(generated)) - ear_torch(net(real))).abs().mean()`` with both ``(B, 3, S, S)``
in [-1, 1]. **a2v:** measuring the real frame with the same net (rather than the shard's dlib
``ear``) keeps the net's own bias out of the difference.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from a2v.features.shard import ShardReader
from a2v.features.windows import frames_to_tensor
from a2v.models.eye_landmarks import FIRST_INDEX, MIRROR, N_POINTS, EyeLandmarkConfig, EyeLandmarkNet, ear_torch
from a2v.training.checkpoint import load_checkpoint
from a2v.training.data import StepBatchSampler
from a2v.training.runner import emitter, judge_runner, single_loss_step
from a2v.training.settings import check_run_settings, parse_run_section

EYE_LANDMARKS = "eye_landmarks"
"""Recipe name in the checkpoints and name of the network."""

CACHE_LIMIT_BYTES = 2 << 30
"""**a2v:** :class:`EyeFrames` keeps the clips' frames in memory when they total at most this
(2 GiB); above it, each sample's frame is read from its shard (one HDF5 chunk)."""


@dataclass
class EyeLandmarkTraining:
    """The ``eye_landmarks.training`` section (see the module docstring).

    Attributes:
        batch_size, lr (Adam), steps, seed, checkpoint_every, log_every, progress_interval: as
            for the other judges (:class:`a2v.training.syncnet.SyncNetTraining`).
        flip: mirror odd-drawn samples left-right.
        ear_weight: weight of the EAR L1 term (0: points only).

    Raises:
        ValueError: counts < 1, lr <= 0, negative ``ear_weight``.
    """

    batch_size: int = 32
    lr: float = 1e-3
    steps: int = 3000
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 50
    progress_interval: float = 30.0
    flip: bool = True
    ear_weight: float = 1.0

    def __post_init__(self):
        check_run_settings(self, "eye_landmarks.training")
        if not self.ear_weight >= 0:
            raise ValueError(f"eye_landmarks.training.ear_weight must be >= 0, got {self.ear_weight}")


def parse_eye_landmarks_config(section: dict | None) -> tuple[EyeLandmarkConfig, EyeLandmarkTraining]:
    """Split the ``eye_landmarks`` section (``model``, ``training``, ``weights``) into model and training settings.

    Raises:
        ValueError: unknown keys or bad values.
    """
    return parse_run_section(EYE_LANDMARKS, section, EyeLandmarkConfig, EyeLandmarkTraining)


class EyeFrames(Dataset):
    """Every frame with finite eye landmarks of ``(shard path, clip id)`` pairs.

    Args:
        clips: ``(shard path, clip id)`` pairs; every shard must have the same crop side ``S``.
        flip: mirror the sample left-right when its draw is odd.
        cache: keep the frames in memory; ``None``: when they total at most :data:`CACHE_LIMIT_BYTES`.

    Items: ``dataset[(i, draw)]`` (or ``dataset[i]``, draw 0) for frame ``i``:
    ``image (3, S, S)`` float32 RGB in [-1, 1], ``points (12, 2)`` float32 crop pixels (iBUG 36-47),
    ``ear (2,)`` float32 (the shard's dlib EAR).

    Raises:
        ValueError: no clips, clips of different crop sides, or no frame with eye landmarks.
        KeyError: a clip not in its shard.
    """

    def __init__(self, clips: Sequence[tuple[str | Path, str]], flip: bool = False, cache: bool | None = None):
        if not clips:
            raise ValueError("EyeFrames needs at least one clip")
        self.clips = [(str(p), str(c)) for p, c in clips]
        self.flip = bool(flip)
        self._readers: dict[str, ShardReader] = {}
        points, ears, index, sizes = [], [], [], set()
        try:
            for c, (path, clip_id) in enumerate(self.clips):
                reader = self._reader(path)
                if clip_id not in reader.clip_ids:
                    raise KeyError(f"{path}: no clip {clip_id!r}")
                sizes.add(int(reader.shape(clip_id, "frames")[1]))
                eye = reader.read(clip_id, "landmarks")[:, FIRST_INDEX:FIRST_INDEX + N_POINTS].astype(np.float32)
                ok = np.isfinite(eye).all(axis=(1, 2))
                points.append(eye)
                ears.append(reader.read(clip_id, "ear").astype(np.float32))
                index += [(c, int(t)) for t in np.flatnonzero(ok)]
            if len(sizes) != 1:
                raise ValueError(f"EyeFrames needs clips of one crop side, got {sorted(sizes)}")
            if not index:
                raise ValueError("EyeFrames: no frame of these clips has finite eye landmarks")
            self.size = sizes.pop()
            self.points, self.ears, self.index = points, ears, index
            n_bytes = sum(len(p) for p in points) * self.size * self.size * 3
            self.frames: list[np.ndarray] | None = None
            if cache or (cache is None and n_bytes <= CACHE_LIMIT_BYTES):
                self.frames = [self._reader(p).read(c, "frames") for p, c in self.clips]
        finally:
            self._close()

    def _reader(self, path: str) -> ShardReader:
        if path not in self._readers:
            self._readers[path] = ShardReader(path)
        return self._readers[path]

    def _close(self) -> None:
        for r in self._readers.values():
            r.close()
        self._readers = {}

    def __getstate__(self):  # h5py handles must not cross a fork
        return {**self.__dict__, "_readers": {}}

    def __len__(self) -> int:
        return len(self.index)

    def all_points(self) -> np.ndarray:
        """``(N, 12, 2)`` float32 eye landmarks of every sample, unflipped (crop pixels)."""
        return np.stack([self.points[c][t] for c, t in self.index])

    def __getitem__(self, key) -> dict[str, torch.Tensor]:
        i, draw = key if isinstance(key, tuple) else (key, 0)
        c, t = self.index[int(i)]
        if self.frames is not None:
            frame = self.frames[c][t]
        else:
            path, clip_id = self.clips[c]
            frame = self._reader(path).read(clip_id, "frames", t)
        points, ear = self.points[c][t], self.ears[c][t]
        if self.flip and int(draw) % 2 == 1:
            frame = frame[:, ::-1]
            points = points[list(MIRROR)] * np.array([-1.0, 1.0], np.float32) + np.array([self.size - 1, 0], np.float32)
            ear = ear[::-1]
        return {"image": frames_to_tensor(frame), "points": torch.from_numpy(np.ascontiguousarray(points, np.float32)),
                "ear": torch.from_numpy(np.ascontiguousarray(ear, np.float32))}


def eye_landmark_loss(pred: torch.Tensor, points: torch.Tensor, ear_weight: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The training loss (module docstring): ``mean |pred − points|`` (pixels) ``+ ear_weight ·
    mean |EAR(pred) − EAR(points)|``. Returns the scalar and its terms ``{"points_l1", "ear_l1"}``."""
    points_l1 = (pred - points).abs().mean()
    ear_l1 = (ear_torch(pred) - ear_torch(points)).abs().mean()
    return points_l1 + ear_weight * ear_l1, {"points_l1": points_l1.detach(), "ear_l1": ear_l1.detach()}


@torch.no_grad()
def predict_frames(model: EyeLandmarkNet, frames: np.ndarray, device: torch.device | str = "cpu", batch_size: int = 64) -> np.ndarray:
    """Eye landmarks of ``(T, S, S, 3)`` uint8 aligned crops: ``(T, 12, 2)`` float32 crop pixels (model in eval mode)."""
    model.eval()
    device = torch.device(device)
    out = [model(frames_to_tensor(frames[i:i + batch_size]).to(device)).cpu() for i in range(0, len(frames), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, N_POINTS, 2), np.float32)


def evaluate_eye_landmarks(model: EyeLandmarkNet, clips: Sequence[tuple[str | Path, str]], device: torch.device | str = "cpu") -> dict:
    """Errors of ``model`` against the shards' dlib eye landmarks on ``clips`` (held-out clips).

    Returns:
        ``{"point_error_px", "ear_mae", "baseline_point_error_px", "baseline_ear_mae", "n_frames"}``:
        the mean Euclidean distance of a predicted point from dlib's (crop pixels), the mean
        |EAR error| over both eyes (EAR from the 12 points with :func:`ear_torch`), the same two
        for the model's mean shape predicted on every frame, and the frames scored (those with
        finite eye landmarks). NaN errors when no frame is scored.

    Raises:
        KeyError: a clip not in its shard. FileNotFoundError: no such shard.
    """
    preds, truths = [], []
    readers: dict[str, ShardReader] = {}
    try:
        for path, clip_id in clips:
            reader = readers.setdefault(str(path), ShardReader(path))
            if clip_id not in reader.clip_ids:
                raise KeyError(f"{path}: no clip {clip_id!r}")
            eye = reader.read(clip_id, "landmarks")[:, FIRST_INDEX:FIRST_INDEX + N_POINTS].astype(np.float32)
            ok = np.isfinite(eye).all(axis=(1, 2))
            if ok.any():
                frames = reader.read(clip_id, "frames")[ok]
                preds.append(torch.from_numpy(predict_frames(model, frames, device)))
                truths.append((torch.from_numpy(eye[ok]), frames.shape[1]))
    finally:
        for r in readers.values():
            r.close()
    if not preds:
        nan = float("nan")
        return {"point_error_px": nan, "ear_mae": nan, "baseline_point_error_px": nan, "baseline_ear_mae": nan, "n_frames": 0}
    pred = torch.cat(preds)
    truth = torch.cat([t for t, _ in truths])
    mean = torch.cat([model.mean_points(s).cpu().expand(len(t), -1, -1) for t, s in truths])
    ear_true = ear_torch(truth)

    def errors(p: torch.Tensor) -> tuple[float, float]:
        return float((p - truth).norm(dim=-1).mean()), float((ear_torch(p) - ear_true).abs().mean())

    point_error, ear_mae = errors(pred)
    base_point, base_ear = errors(mean)
    return {"point_error_px": point_error, "ear_mae": ear_mae, "baseline_point_error_px": base_point,
            "baseline_ear_mae": base_ear, "n_frames": int(len(pred))}


def train_eye_landmarks(
    section: dict | None,
    train_clips: Sequence[tuple[str | Path, str]],
    out_dir: str | Path,
    device: torch.device | str = "cpu",
    log: Callable[[str], None] | logging.Logger | None = None,
) -> Path:
    """Train (or resume) the eye-landmark net on ``train_clips``; returns ``out_dir/checkpoint.pt``.

    A complete ``checkpoint.pt`` of the same settings and clips is returned as it is; a ``last.pt``
    of them is resumed. The final checkpoint records the training-clip errors (module docstring).

    Raises:
        ValueError: bad config, or clips without usable frames (:class:`EyeFrames`).
    """
    emit = emitter(log)
    device = torch.device(device)
    model_cfg, tcfg = parse_eye_landmarks_config(section)
    run = judge_runner(out_dir, EYE_LANDMARKS, EYE_LANDMARKS, model_cfg, tcfg, train_clips, emit)
    if (done := run.complete()) is not None:
        return done
    torch.manual_seed(tcfg.seed)
    data = EyeFrames(train_clips, flip=tcfg.flip)
    model = EyeLandmarkNet(model_cfg)
    model.set_mean_shape(torch.from_numpy(data.all_points()), data.size)
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=tcfg.lr)
    run.start({EYE_LANDMARKS: model}, {"adam": opt}, device)
    loader = DataLoader(data, batch_sampler=StepBatchSampler(len(data), tcfg.batch_size, tcfg.seed, run.start_step, tcfg.steps))
    emit(f"[eye_landmarks] {sum(p.numel() for p in model.parameters()) / 1e6:.3f} M parameters, {len(train_clips)} clips, "
         f"{len(data)} frames of {data.size} px, steps {run.start_step}->{tcfg.steps}, device {device}")
    terms: dict[str, torch.Tensor] = {}

    def loss_fn(batch: dict) -> torch.Tensor:
        loss, parts = eye_landmark_loss(model(batch["image"].to(device)), batch["points"].to(device), tcfg.ear_weight)
        terms.update(parts)
        return loss

    step_loss = single_loss_step(loss_fn, opt)

    def step(batch: dict) -> dict[str, torch.Tensor]:
        return {**step_loss(batch), **terms}

    def finish() -> dict:
        m = evaluate_eye_landmarks(model, train_clips, device)
        emit(f"[eye_landmarks] training clips: point error {m['point_error_px']:.3f} px (mean shape "
             f"{m['baseline_point_error_px']:.3f}), EAR MAE {m['ear_mae']:.4f} (mean shape {m['baseline_ear_mae']:.4f})")
        return {"train_" + k: v for k, v in m.items()}

    return run.run(loader, step, {EYE_LANDMARKS: model}, {"adam": opt}, {"crop_size": data.size},
                   ["loss", "points_l1", "ear_l1"], finish=finish)


def load_eye_landmarks(path: str | Path, device: torch.device | str = "cpu") -> tuple[EyeLandmarkNet, dict]:
    """The trained net of an ``eye_landmarks`` checkpoint, in eval mode on ``device``, with no
    gradient on its parameters (inputs still get gradients: the blink loss back-propagates through it).

    Returns:
        ``(model, info)``; ``info`` holds ``config`` (model and training settings), ``step``,
        ``crop_size`` (of the training shards) and the ``train_*`` errors recorded at the end.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not an a2v checkpoint of ``eye_landmarks``, or an unfinished one.
    """
    state = load_checkpoint(path, map_location="cpu", recipe=EYE_LANDMARKS)
    if not state.get("complete"):
        raise ValueError(f"{path}: eye_landmarks checkpoint is not complete (step {state.get('step')})")
    model = EyeLandmarkNet(EyeLandmarkConfig.from_dict(state["config"]["model"]))
    model.load_state_dict(state["networks"][EYE_LANDMARKS])
    model.to(torch.device(device)).eval().requires_grad_(False)
    info = {"config": state["config"], "step": state["step"], "crop_size": state.get("state", {}).get("crop_size"),
            **{k: v for k, v in state.items() if k.startswith("train_")}}
    return model, info
