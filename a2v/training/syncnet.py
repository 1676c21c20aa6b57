"""Training SyncNet (:mod:`a2v.models.syncnet`) on real clips; scoring clips with it (LSE-C/D) is
:mod:`a2v.judges.syncnet`.

No SyncNet weights ship in any package, so the pipeline trains its own (Chung & Zisserman 2016
§3.2): pairs of a 5-frame mouth window centred on frame t and the MFCC window of frame t + o,
in sync (o = 0, label 1) or shifted (5 ≤ |o| ≤ 15 frames inside the clip, label 0), half and
half; contrastive loss (margin 1); Adam. MFCCs are standardised per coefficient on the training
clips (:class:`a2v.features.normalizer.FeatureNormalizer`, stored in the checkpoint's state).
Run by the phase runner every model uses (:class:`a2v.training.runner.PhaseRunner`), as one
phase: recipe ``"syncnet"``, network ``syncnet``, optimiser ``adam``.

Config (top-level ``syncnet`` section)::

    syncnet:
      model: {mouth_width: 96, mouth_height: 48, channels: [64, 128, 256, 256], embed_dim: 256}
      training: {batch_size: 64, lr: 1.0e-3, steps: 20000, seed: 0, checkpoint_every: 500,
                 log_every: 50, margin: 1.0, progress_interval: 30.0}
      weights: null     # an a2v syncnet checkpoint trained elsewhere
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from a2v.face.mouth import mouth_crops
from a2v.features.shard import ShardReader
from a2v.features.windows import frames_to_tensor
from a2v.features.normalizer import FeatureNormalizer, fit_normalizer
from a2v.judges.lipreader import mouths_to_tensor
from a2v.judges.syncnet import SYNCNET, SyncScorer
from a2v.models.syncnet import N_FRAMES, SyncNet, SyncNetConfig, contrastive_loss
from a2v.training.data import StepBatchSampler
from a2v.training.runner import emitter, judge_runner, single_loss_step
from a2v.training.settings import check_run_settings, parse_run_section

CROPS = ("mouth", "lower_half")
"""Face regions the video stream can see (:func:`load_sync_clips`)."""

MIN_SHIFT, MAX_SHIFT = 5, 15
"""Negative pairs: audio shifted by 5 … 15 frames (0.2 … 0.6 s)."""


@dataclass
class SyncNetTraining:
    """The ``syncnet.training`` section (see the module docstring)."""

    batch_size: int = 64
    lr: float = 1e-3
    steps: int = 20000
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 50
    margin: float = 1.0
    progress_interval: float = 30.0

    def __post_init__(self):
        check_run_settings(self, "syncnet.training")
        if not self.margin > 0:
            raise ValueError(f"syncnet.training.margin must be > 0, got {self.margin}")


def parse_syncnet_config(section: dict | None) -> tuple[SyncNetConfig, SyncNetTraining]:
    """Split the ``syncnet`` section into model and training settings.

    Raises:
        ValueError: unknown keys or bad values.
    """
    return parse_run_section("syncnet", section, SyncNetConfig, SyncNetTraining)


class SyncPairs(Dataset):
    """In-sync and shifted (mouth window, MFCC window) pairs of whole clips.

    Args:
        mouths: per clip ``(T, 3, H, W)`` float tensors in [-1, 1].
        mfccs: per clip ``(T, 20, 13)`` float tensors, standardised.

    Items: ``dataset[(i, draw)]`` for window ``i`` (a clip and a centre frame): ``video (15, H, W)``,
    ``mfcc (20, 13)``, ``label`` (1. in sync when ``draw`` is even, else 0. with a shift picked by ``draw``).
    """

    def __init__(self, mouths: list[torch.Tensor], mfccs: list[torch.Tensor]):
        self.mouths, self.mfccs = mouths, mfccs
        self.index = [(c, t) for c, m in enumerate(mouths) for t in range(N_FRAMES // 2, len(m) - N_FRAMES // 2)
                      if len(self._shifts(len(m), t)) > 0]
        if not self.index:
            raise ValueError(f"SyncNet needs clips of at least {N_FRAMES + MIN_SHIFT} frames")

    @staticmethod
    def _shifts(n: int, t: int) -> list[int]:
        return [o for o in range(-MAX_SHIFT, MAX_SHIFT + 1) if abs(o) >= MIN_SHIFT and 0 <= t + o < n]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, key) -> dict:
        i, draw = key if isinstance(key, tuple) else (key, 0)
        c, t = self.index[i]
        video = self.mouths[c][t - N_FRAMES // 2 : t + N_FRAMES // 2 + 1].reshape(-1, *self.mouths[c].shape[2:])
        in_sync = draw % 2 == 0
        if in_sync:
            o = 0
        else:
            shifts = self._shifts(len(self.mouths[c]), t)
            o = shifts[(draw // 2) % len(shifts)]
        return {"video": video, "mfcc": self.mfccs[c][t + o], "label": torch.tensor(1.0 if in_sync else 0.0)}


def load_sync_clips(clips: Sequence[tuple[str | Path, str]], cfg: SyncNetConfig, normalizer: FeatureNormalizer,
                    crop: str = "mouth") -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Video tensors ``(T, 3, H, W)`` in [-1, 1] and standardised MFCC tensors ``(T, 20, 13)`` of
    ``(shard, clip id)`` pairs; ``crop`` (:data:`CROPS`) says which region of the aligned face the
    video stream sees: ``"mouth"`` (the LSE judge, :func:`a2v.face.mouth.mouth_crops`) or
    ``"lower_half"`` (OneShotA2V's sync discriminator, :func:`lower_half`)."""
    if crop not in CROPS:
        raise ValueError(f"crop must be one of {CROPS}, got {crop!r}")
    mouths, mfccs = [], []
    readers: dict[str, ShardReader] = {}
    try:
        for path, clip_id in clips:
            reader = readers.setdefault(str(path), ShardReader(path))
            frames = reader.read(clip_id, "frames")
            if crop == "mouth":
                video = mouths_to_tensor(mouth_crops(frames, cfg.mouth_width, cfg.mouth_height)).permute(1, 0, 2, 3).contiguous()
            else:
                video = lower_half(frames_to_tensor(frames), cfg.mouth_width, cfg.mouth_height)
            mouths.append(video)
            mfccs.append(torch.from_numpy(normalizer.mfcc(reader.read(clip_id, "mfcc"))))
    finally:
        for r in readers.values():
            r.close()
    return mouths, mfccs


def lower_half(frames: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """The lower half of aligned face crops, resized: OneShotA2V's sync-discriminator input (§3.2.3).

    Differentiable, so the same function cuts real frames for pretraining and generated frames
    for the sync loss.

    Args:
        frames: ``(N, 3, S, S)`` float in [-1, 1].
        width, height: output size in pixels (bilinear with antialiasing).

    Returns:
        ``(N, 3, height, width)`` float.

    Raises:
        ValueError: frames not ``(N, 3, S, S)``.
    """
    if frames.ndim != 4 or frames.shape[1] != 3:
        raise ValueError(f"frames must be (N, 3, S, S), got {tuple(frames.shape)}")
    half = frames[:, :, frames.shape[2] // 2:, :]
    return F.interpolate(half, size=(height, width), mode="bilinear", align_corners=False, antialias=True)


def train_syncnet(
    section: dict | None,
    train_clips: Sequence[tuple[str | Path, str]],
    out_dir: str | Path,
    device: torch.device | str = "cpu",
    log: Callable[[str], None] | logging.Logger | None = None,
    *,
    name: str = SYNCNET,
    crop: str = "mouth",
) -> Path:
    """Train (or resume) SyncNet on ``train_clips``; returns ``out_dir/checkpoint.pt``.

    ``name`` is the network's name in the checkpoint and log, ``crop`` the face region the video
    stream sees (:func:`load_sync_clips`): the LSE judge is ``("syncnet", "mouth")``, OneShotA2V's
    sync discriminator :func:`a2v.training.sync_discriminator.train_sync_discriminator`.

    The final checkpoint also records, on the training clips, the mean in-sync distance, the mean
    distance of 10-frame-shifted pairs, and the share of clips whose best offset is within ±1 frame.

    Raises:
        ValueError: bad config or clips.
    """
    emit = emitter(log)
    device = torch.device(device)
    model_cfg, tcfg = parse_syncnet_config(section)
    run = judge_runner(out_dir, name, name, model_cfg, tcfg, train_clips, emit)
    if (done := run.complete()) is not None:
        return done
    torch.manual_seed(tcfg.seed)
    model = SyncNet(model_cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=tcfg.lr)
    state = run.start({name: model}, {"adam": opt}, device)
    normalizer = FeatureNormalizer.from_state_dict(state["normalizer"]) if state else fit_normalizer(train_clips)
    mouths, mfccs = load_sync_clips(train_clips, model_cfg, normalizer, crop)
    pairs = SyncPairs(mouths, mfccs)
    loader = DataLoader(pairs, batch_sampler=StepBatchSampler(len(pairs), tcfg.batch_size, tcfg.seed, run.start_step, tcfg.steps))
    emit(f"[{name}] {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters, {len(mouths)} clips, "
         f"{len(pairs)} windows, {crop} crops {model_cfg.mouth_width}x{model_cfg.mouth_height}, steps {run.start_step}->{tcfg.steps}, device {device}")

    def contrastive(batch: dict) -> torch.Tensor:
        d = model(batch["mfcc"].to(device), batch["video"].to(device))
        return contrastive_loss(d, batch["label"].to(device), tcfg.margin)

    def finish() -> dict:
        scorer = SyncScorer(model, normalizer, device)
        found = [scorer.score_tensors(m, a)["offset"] for m, a in zip(mouths, mfccs)]
        share = float(np.mean([abs(o) <= 1 for o in found]))
        emit(f"[{name}] best offset within ±1 frame on {100 * share:.0f} % of its {len(found)} training clips")
        return {"train_offset_share": share}

    return run.run(loader, single_loss_step(contrastive, opt), {name: model}, {"adam": opt},
                   {"normalizer": normalizer.state_dict()}, ["loss"], finish=finish)
