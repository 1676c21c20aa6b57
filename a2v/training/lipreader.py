"""Training the LipNet lip-reader (:mod:`a2v.models.lipreader`) on real clips, and reading lips with it.

The lip-reader is the judge of WER (MAN supp. §2.2): no LipNet weights ship in any package, so
the pipeline trains its own on the training clips of the real corpus (``train_lipreader``, the
``train_lipreader`` rule) and reports its WER on the real test clips beside the WER on generated
ones.

Training (LipNet §4): CTC loss (blank 0, Graves et al. 2006) on mouth crops of the aligned frames
(:func:`a2v.face.mouth.mouth_crops`), Adam (lr 1e-4), horizontal-flip augmentation; sentences
are the clip's aligned words without GRID's ``sil``/``sp`` markers. Resumable like MAN training:
``last.pt`` every ``checkpoint_every`` steps, ``checkpoint.pt`` (format ``"a2v-lipnet"``) at the end,
``losses.csv`` with ``step, loss`` (CTC)``, seconds`` (:class:`a2v.training.resumable.ResumableRun`).

Config (top-level ``lipreader`` section)::

    lipreader:
      model: {mouth_width: 100, mouth_height: 50, channels: [32, 64, 96], gru_hidden: 256,
              gru_layers: 2, dropout: 0.5}
      training: {batch_size: 8, lr: 1.0e-4, steps: 5000, seed: 0, checkpoint_every: 250,
                 log_every: 25, flip: true, progress_interval: 30.0}
      weights: null     # a torch state dict / a2v-lipnet checkpoint of an externally trained LipNet
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
from a2v.metrics.wer import word_error_rate
from a2v.models.lipreader import LipNet, LipNetConfig, encode_text, greedy_decode
from a2v.training.checkpoint import plain
from a2v.training.data import StepBatchSampler
from a2v.training.resumable import ResumableRun, check_run_settings, parse_run_section

_log = logging.getLogger(__name__)

LIPNET_FORMAT = "a2v-lipnet"
NON_WORDS = ("sil", "sp")
"""GRID alignment markers for silence and short pause, not spoken words."""


@dataclass
class LipreaderTraining:
    """The ``lipreader.training`` section (see the module docstring)."""

    batch_size: int = 8
    lr: float = 1e-4
    steps: int = 5000
    seed: int = 0
    checkpoint_every: int = 250
    log_every: int = 25
    flip: bool = True
    progress_interval: float = 30.0

    def __post_init__(self):
        check_run_settings(self, "lipreader.training")


def parse_lipreader_config(section: dict | None) -> tuple[LipNetConfig, LipreaderTraining]:
    """Split the ``lipreader`` section into model and training settings.

    Raises:
        ValueError: unknown keys or bad values.
    """
    return parse_run_section("lipreader", section, LipNetConfig, LipreaderTraining)


def clip_sentence(words: Sequence[str]) -> str:
    """The spoken sentence of a clip's aligned words (``sil``/``sp`` dropped), e.g. ``"bin blue at f two now"``."""
    return " ".join(w.lower() for w in words if w.lower() not in NON_WORDS)


def load_mouth_clips(clips: Sequence[tuple[str | Path, str]], width: int, height: int) -> list[tuple[np.ndarray, str]]:
    """Mouth crops and sentences of ``(shard path, clip id)`` pairs.

    Returns:
        ``[(mouths (T, height, width, 3) uint8, sentence), …]`` in the order given.

    Raises:
        KeyError: a clip not in its shard.
        ValueError: a clip without words.
    """
    out = []
    readers: dict[str, ShardReader] = {}
    try:
        for path, clip_id in clips:
            reader = readers.setdefault(str(path), ShardReader(path))
            if clip_id not in reader.clip_ids:
                raise KeyError(f"{path}: no clip {clip_id!r}")
            sentence = clip_sentence(reader.clip_attrs(clip_id)["words"])
            if not sentence:
                raise ValueError(f"{path}: clip {clip_id!r} has no words to lip-read")
            out.append((mouth_crops(reader.read(clip_id, "frames"), width, height), sentence))
    finally:
        for r in readers.values():
            r.close()
    return out


def mouths_to_tensor(mouths: np.ndarray) -> torch.Tensor:
    """``(T, H, W, 3)`` uint8 → ``(3, T, H, W)`` float32 in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(mouths)).permute(3, 0, 1, 2).float().div(127.5).sub(1.0)


class MouthClipDataset(Dataset):
    """Whole clips for CTC training. ``dataset[(i, draw)]`` flips clip i horizontally when ``flip`` and ``draw`` is odd.

    Items: ``video (3, T, H, W)`` float, ``target (L,)`` int64 class indices, ``sentence`` str.
    """

    def __init__(self, items: list[tuple[np.ndarray, str]], flip: bool = True):
        if not items:
            raise ValueError("the lip-reader needs at least one training clip")
        self.items = items
        self.flip = flip
        self.targets = [torch.tensor(encode_text(s), dtype=torch.long) for _, s in items]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key) -> dict:
        i, draw = key if isinstance(key, tuple) else (key, 0)
        mouths, sentence = self.items[i]
        video = mouths_to_tensor(mouths)
        if self.flip and draw % 2:
            video = video.flip(-1)
        return {"video": video, "target": self.targets[i], "sentence": sentence}


def collate_clips(batch: list[dict]) -> dict:
    """Pad videos to the longest clip (repeating its last frame) and concatenate targets (CTC layout)."""
    t_max = max(b["video"].shape[1] for b in batch)
    videos = [F.pad(b["video"], (0, 0, 0, 0, 0, t_max - b["video"].shape[1]), mode="replicate") if b["video"].shape[1] < t_max else b["video"] for b in batch]
    return {
        "video": torch.stack(videos),
        "lengths": torch.tensor([b["video"].shape[1] for b in batch], dtype=torch.long),
        "targets": torch.cat([b["target"] for b in batch]),
        "target_lengths": torch.tensor([len(b["target"]) for b in batch], dtype=torch.long),
        "sentences": [b["sentence"] for b in batch],
    }


def _emit(log) -> Callable[[str], None]:
    if log is None:
        return _log.info
    return log.info if hasattr(log, "info") else log


def train_lipreader(
    section: dict | None,
    train_clips: Sequence[tuple[str | Path, str]],
    out_dir: str | Path,
    device: torch.device | str = "cpu",
    log: Callable[[str], None] | logging.Logger | None = None,
) -> Path:
    """Train (or resume) the lip-reader on ``train_clips``; returns ``out_dir/checkpoint.pt``.

    Args:
        section: the config's ``lipreader`` section.
        train_clips: ``(shard path, clip id)`` pairs — never the test clips.
        out_dir: folder for ``losses.csv``, ``last.pt``, ``checkpoint.pt``.
        device: where to train.
        log: callable or logger.

    Raises:
        ValueError: bad config or clips.
    """
    emit = _emit(log)
    device = torch.device(device)
    model_cfg, tcfg = parse_lipreader_config(section)
    identity = {"train_clips": [[str(p), str(c)] for p, c in train_clips], "model": model_cfg.to_dict(), "training": plain(vars(tcfg))}
    run = ResumableRun(out_dir, LIPNET_FORMAT, tcfg.steps, identity, emit, "lipreader")
    if (done := run.complete()) is not None:
        return done
    torch.manual_seed(tcfg.seed)
    model = LipNet(model_cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=tcfg.lr)
    start = run.resume(model, opt, device)
    items = load_mouth_clips(train_clips, model_cfg.mouth_width, model_cfg.mouth_height)
    dataset = MouthClipDataset(items, tcfg.flip)
    loader = DataLoader(dataset, batch_sampler=StepBatchSampler(len(dataset), tcfg.batch_size, tcfg.seed, start, tcfg.steps), collate_fn=collate_clips)
    ctc = torch.nn.CTCLoss(blank=0, zero_infinity=True)
    emit(f"[lipreader] LipNet {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters, {len(dataset)} clips, "
         f"mouths {model_cfg.mouth_width}x{model_cfg.mouth_height}, batch {tcfg.batch_size}, steps {start}->{tcfg.steps}, device {device}")

    def step_fn(batch: dict) -> torch.Tensor:
        log_probs = model(batch["video"].to(device))
        return ctc(log_probs, batch["targets"].to(device), batch["lengths"].to(device), batch["target_lengths"].to(device))

    def finish() -> dict:
        hyps = LipReader(model, device).transcribe([m for m, _ in items])
        train_wer = 100.0 * word_error_rate([s for _, s in items], hyps)
        emit(f"[lipreader] WER on its own training clips: {train_wer:.1f} %")
        return {"train_wer": train_wer}

    return run.run(loader, step_fn, model, opt, {"model_config": model_cfg.to_dict()}, tcfg.log_every, tcfg.checkpoint_every,
                   tcfg.progress_interval, finish)


class LipReader:
    """A trained LipNet in eval mode that transcribes mouth-crop sequences (greedy CTC decoding).

    Args:
        model: the network (moved to ``device``, eval mode).
        device: where it runs.
    """

    def __init__(self, model: LipNet, device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.cfg = model.cfg

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str = "cpu") -> "LipReader":
        """From an ``a2v-lipnet`` checkpoint, or a bare torch state dict of :class:`LipNet` with default config.

        Raises:
            FileNotFoundError: no such file.
            ValueError: neither format, or weights that do not fit.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: lip-reader weights not found")
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and state.get("format") == LIPNET_FORMAT:
            model = LipNet(LipNetConfig.from_dict(state["model_config"]))
            weights = state["model"]
        elif isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values()):
            model, weights = LipNet(), state
        else:
            raise ValueError(f"{path}: not an a2v-lipnet checkpoint or a LipNet state dict")
        try:
            model.load_state_dict(weights)
        except RuntimeError as exc:
            raise ValueError(f"{path}: weights do not fit a2v's LipNet ({exc})") from exc
        return cls(model, device)

    @torch.no_grad()
    def transcribe(self, mouth_clips: Sequence[np.ndarray]) -> list[str]:
        """Sentences read from ``(T, H, W, 3)`` uint8 mouth-crop clips (H × W = the model's mouth size)."""
        out = []
        for mouths in mouth_clips:
            x = mouths_to_tensor(mouths)[None].to(self.device)
            out += greedy_decode(self.model(x))
        return out

    def read_lips(self, aligned_clips: Sequence[np.ndarray]) -> list[str]:
        """Sentences read from ``(T, S, S, 3)`` uint8 aligned face crops (real or generated)."""
        return self.transcribe([mouth_crops(c, self.cfg.mouth_width, self.cfg.mouth_height) for c in aligned_clips])
