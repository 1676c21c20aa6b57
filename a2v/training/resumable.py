"""A resumable single-network training run (the lip-reader, SyncNet): ``last.pt`` every
``checkpoint_every`` steps, ``checkpoint.pt`` at the end, ``losses.csv`` — the same contract as a
MAN phase (:mod:`a2v.training.loop`), for models with one optimiser and one loss.

A run is identified by ``identity`` (e.g. its training clips and settings): a ``last.pt`` or a
complete ``checkpoint.pt`` with another identity is ignored, never mixed in.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from a2v.settings import dataclass_from_dict
from a2v.training.checkpoint import load_checkpoint, save_checkpoint
from a2v.training.losslog import LossLog

RUN_COUNTS = ("batch_size", "steps", "checkpoint_every", "log_every")


def check_run_settings(settings: Any, section: str) -> None:
    """Validate the common fields of a run's training settings (counts >= 1, lr > 0).

    Raises:
        ValueError: naming ``<section>.<field>``.
    """
    for name in RUN_COUNTS:
        if int(getattr(settings, name)) < 1:
            raise ValueError(f"{section}.{name} must be >= 1, got {getattr(settings, name)}")
    if not settings.lr > 0:
        raise ValueError(f"{section}.lr must be > 0, got {settings.lr}")


def parse_run_section(name: str, section: dict | None, model_cls, training_cls) -> tuple:
    """Split a ``{model, training, weights}`` config section into ``(model_cls, training_cls)`` settings.

    Raises:
        ValueError: unknown keys or bad values, naming the section.
    """
    section = dict(section or {})
    unknown = sorted(set(section) - {"model", "training", "weights"})
    if unknown:
        raise ValueError(f"{name}: unknown keys {unknown}; known: ['model', 'training', 'weights']")
    return model_cls.from_dict(section.get("model")), dataclass_from_dict(training_cls, section.get("training"), f"{name}.training")


class ResumableRun:
    """One training run in ``out_dir`` (see the module docstring).

    Args:
        out_dir: folder of ``last.pt``, ``checkpoint.pt``, ``losses.csv``.
        fmt: checkpoint format name (``"a2v-lipnet"``, ``"a2v-syncnet"``).
        steps: total optimisation steps.
        identity: plain-container dict stored in every checkpoint; resuming needs it equal.
        emit: a callable taking a log line.
        desc: label for logs and the progress bar.
    """

    def __init__(self, out_dir: str | Path, fmt: str, steps: int, identity: dict, emit: Callable[[str], None], desc: str):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.final, self.last = self.out_dir / "checkpoint.pt", self.out_dir / "last.pt"
        self.fmt, self.steps, self.identity, self.emit, self.desc = fmt, int(steps), identity, emit, desc
        self.start, self.elapsed = 0, 0.0

    def complete(self) -> Path | None:
        """``checkpoint.pt`` when it holds this run, finished; else ``None``."""
        if self.final.exists():
            done = load_checkpoint(self.final, fmt=self.fmt)
            if done.get("complete") and done.get("step") == self.steps and done.get("identity") == self.identity:
                self.emit(f"[{self.desc}] {self.final} is complete; nothing to do")
                return self.final
        return None

    def resume(self, model: torch.nn.Module, opt: torch.optim.Optimizer, device: torch.device) -> int:
        """Load ``last.pt`` of this run into ``model``/``opt`` if there is one; returns the start step."""
        if self.last.exists():
            state = load_checkpoint(self.last, device, fmt=self.fmt)
            if state.get("identity") == self.identity and state.get("step", 0) < self.steps:
                model.load_state_dict(state["model"])
                opt.load_state_dict(state["optimizer"])
                self.start, self.elapsed = int(state["step"]), float(state.get("elapsed_s", 0.0))
                torch.set_rng_state(state["torch_rng"].cpu())
                self.emit(f"[{self.desc}] resuming from {self.last} at step {self.start}/{self.steps}")
            else:
                self.emit(f"[{self.desc}] ignoring {self.last}: it belongs to another run")
        return self.start

    def run(
        self,
        batches: Iterable,
        step_fn: Callable[[object], torch.Tensor],
        model: torch.nn.Module,
        opt: torch.optim.Optimizer,
        state: dict,
        log_every: int,
        checkpoint_every: int,
        progress_interval: float = 30.0,
        finish: Callable[[], dict] | None = None,
    ) -> Path:
        """Run steps ``start … steps − 1``: ``loss = step_fn(batch)``, backward, ``opt.step()``.

        Args:
            batches: one batch per remaining step.
            step_fn: batch → scalar loss (the model in train mode).
            model, opt: what is trained and saved.
            state: extra plain entries for every checkpoint (model config, settings, normaliser…).
            log_every, checkpoint_every: steps between ``losses.csv`` rows / ``last.pt`` saves.
            progress_interval: seconds between progress-bar refreshes.
            finish: called after the last step; its dict goes into ``checkpoint.pt``.

        Returns:
            ``out_dir/checkpoint.pt``.

        Raises:
            RuntimeError: the batches ran out before ``steps``.
        """
        log = LossLog(self.out_dir / "losses.csv", ["step", "loss", "seconds"], self.start if self.start else None)
        t0 = time.perf_counter()

        def snapshot(step: int, complete: bool, extra: dict | None = None) -> dict:
            return {**state, "identity": self.identity, "model": model.state_dict(), "optimizer": opt.state_dict(),
                    "step": step, "complete": complete, "elapsed_s": self.elapsed + time.perf_counter() - t0,
                    "torch_rng": torch.get_rng_state(), **(extra or {})}

        model.train()
        step = self.start
        bar = tqdm(total=self.steps, initial=step, desc=self.desc, file=sys.stderr, mininterval=progress_interval)
        try:
            for batch in batches:
                loss = step_fn(batch)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                bar.update(1)
                if step == 1 or step % log_every == 0 or step == self.steps:
                    log.write({"step": step, "loss": f"{loss.item():.6g}", "seconds": round(self.elapsed + time.perf_counter() - t0, 3)})
                    bar.set_postfix({"loss": f"{loss.item():.3g}"}, refresh=False)
                if step % checkpoint_every == 0 and step < self.steps:
                    save_checkpoint(self.last, snapshot(step, False), self.fmt)
                if step >= self.steps:
                    break
        finally:
            bar.close()
            log.close()
        if step != self.steps:
            raise RuntimeError(f"[{self.desc}] the batches stopped at step {step} of {self.steps}")
        model.eval()
        extra = finish() if finish else {}
        save_checkpoint(self.final, snapshot(step, True, extra), self.fmt)
        if self.last.exists():
            self.last.unlink()
        self.emit(f"[{self.desc}] done: {step} steps in {self.elapsed + time.perf_counter() - t0:.1f} s -> {self.final}")
        return self.final
