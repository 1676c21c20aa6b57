"""OneShotA2V's synchronisation discriminator (§3.2.3, §4.1.5), pretrained by its own rule.

A SyncNet (:class:`a2v.models.syncnet.SyncNet`) on the **lower half** of the aligned face × 5 frames
against the 200 ms MFCC window of the centre frame, pretrained on the experiment's training clips
with the contrastive loss (§4.1.5, margin 1), then frozen and used as a loss on generated frames.

It is **not** the LSE judge (:mod:`a2v.training.syncnet`, ``results/syncnet/<dataset>``): it is
trained by its own rule (``results/<exp>/pretrained/sync_discriminator``), on the lower half
rather than the mouth box, on the experiment's training clips, with its own seed (default 1; the
judge's is 0), so LSE-C/D measure what a network the generator never fooled sees.

Config (``experiments.<exp>.pretrained.sync_discriminator``; the ``syncnet`` section's keys)::

    sync_discriminator:
      model: {mouth_width: 96, mouth_height: 48, channels: [64, 128, 256, 256], embed_dim: 256}
      training: {batch_size: 64, lr: 1.0e-3, steps: 20000, seed: 1, margin: 1.0, ...}

a2v: the paper feeds 224×224 lower halves (§3.2.3); the crop size is the model's
``mouth_width × mouth_height`` (96×48 by default, the judge's size).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from a2v.features.normalizer import FeatureNormalizer
from a2v.models.syncnet import SyncNet, SyncNetConfig
from a2v.training.syncnet import lower_half, train_syncnet

SYNC_DISCRIMINATOR = "sync_discriminator"
DEFAULT_SEED = 1
"""a2v: the sync discriminator's default seed, distinct from the LSE judge's (0)."""


def train_sync_discriminator(
    section: dict | None,
    train_clips: Sequence[tuple[str | Path, str]],
    out_dir: str | Path,
    device: torch.device | str = "cpu",
    log: Callable[[str], None] | logging.Logger | None = None,
) -> Path:
    """Pretrain (or resume) the sync discriminator on ``train_clips``; returns ``out_dir/checkpoint.pt``.

    Args:
        section: ``{"model": …, "training": …}`` as the ``syncnet`` section (``None`` = defaults,
            seed :data:`DEFAULT_SEED`).
        train_clips: ``(shard path, clip id)`` pairs (the experiment's training clips).

    Raises:
        ValueError: bad config or clips too short for 5-frame windows and shifted negatives.
    """
    section = copy.deepcopy(dict(section or {}))
    section.setdefault("training", {})
    section["training"] = {"seed": DEFAULT_SEED, **(section["training"] or {})}
    return train_syncnet(section, train_clips, out_dir, device, log, name=SYNC_DISCRIMINATOR, crop="lower_half")


class SyncDiscriminator(torch.nn.Module):
    """A pretrained sync discriminator, frozen, as a loss on generated frames.

    Args:
        net: the pretrained :class:`SyncNet`; normalizer: its MFCC standardisation (the checkpoint's).

    Forward:
        ``frames (B, 5, 3, S, S)`` float in [-1, 1] (5 consecutive frames), ``mfcc (B, 20, 13)``
        **raw** shard MFCC of the centre frame → ``(B,)`` float32 audio-video distance (0 … 2).
        Gradients flow to ``frames`` only.
    """

    def __init__(self, net: SyncNet, normalizer: FeatureNormalizer):
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.normalizer = normalizer

    def train(self, mode: bool = True):  # always eval: batch-norm statistics stay the pretrained ones
        return super().train(False)

    def forward(self, frames: torch.Tensor, mfcc: torch.Tensor) -> torch.Tensor:
        cfg = self.net.cfg
        if frames.ndim != 5 or frames.shape[1] != 5:
            raise ValueError(f"frames must be (B, 5, 3, S, S), got {tuple(frames.shape)}")
        B = frames.shape[0]
        crops = lower_half(frames.flatten(0, 1).float(), cfg.mouth_width, cfg.mouth_height)
        video = crops.view(B, 5 * 3, cfg.mouth_height, cfg.mouth_width)
        return self.net(self.normalizer.mfcc(mfcc.float()), video)


def load_sync_discriminator(path: str | Path, device: torch.device | str = "cpu") -> tuple[SyncDiscriminator, dict]:
    """The frozen sync discriminator of a checkpoint written by :func:`train_sync_discriminator`,
    and facts of its checkpoint (``train_offset_share``: share of training clips whose best offset
    is within ±1 frame; ``step``).

    Raises:
        FileNotFoundError: no such file. ValueError: another kind of checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: sync discriminator checkpoint not found (the pretrain rule writes it)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != "a2v" or state.get("recipe") != SYNC_DISCRIMINATOR:
        raise ValueError(f"{path}: not an a2v {SYNC_DISCRIMINATOR} checkpoint (recipe {state.get('recipe') if isinstance(state, dict) else None!r})")
    net = SyncNet(SyncNetConfig.from_dict(state["config"]["model"]))
    net.load_state_dict(state["networks"][SYNC_DISCRIMINATOR])
    disc = SyncDiscriminator(net, FeatureNormalizer.from_state_dict(state["state"]["normalizer"]))
    return disc.to(device), {k: state[k] for k in ("train_offset_share", "step") if k in state}


__all__ = ["DEFAULT_SEED", "SYNC_DISCRIMINATOR", "SyncDiscriminator", "load_sync_discriminator", "train_sync_discriminator"]
