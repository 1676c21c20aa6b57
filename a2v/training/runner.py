"""The phase runner: one resumable training phase of any model — named networks, named optimisers.

It knows nothing of models. The caller (:func:`a2v.training.loop.train_phase` for a model recipe,
:mod:`a2v.training.lipreader` / :mod:`a2v.training.syncnet` for the judges) builds the networks
and optimisers and gives a step function; the runner does the rest:

* ``checkpoint.pt`` of this phase, complete and of the same identity → nothing to do;
* ``last.pt`` of this phase and identity → resume: every network and optimiser by name, the torch
  RNG, the step, the seconds spent; rows of ``losses.csv`` after that step are dropped;
* else a previous phase's checkpoint (``init``) → its networks by name (a network it lacks keeps
  its fresh weights, logged), its optimiser states by name with this phase's hyper-parameters
  (lr, betas…) winning over the stored ones, and its data state (e.g. the feature normaliser);
* else a fresh start.

While running: ``losses.csv`` (``step``, the step function's named terms — averaged over the
processes of a data-parallel run —, the caller's extra logged values such as MAN's ρ, ``seconds``) every ``log_every`` steps, ``last.pt`` every
``checkpoint_every`` steps, and ``checkpoint.pt`` at the end (``last.pt`` removed). Checkpoints
carry the recipe's name (:mod:`a2v.training.checkpoint`).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import torch
from tqdm import tqdm

from a2v.training.checkpoint import load_checkpoint, plain, save_checkpoint
from a2v.training.distributed import SINGLE, World, barrier, mean_over_processes
from a2v.training.losslog import LossLog

_log = logging.getLogger(__name__)

LAST = "last.pt"
FINAL = "checkpoint.pt"
LOSSES = "losses.csv"


def emitter(log: Callable[[str], None] | logging.Logger | None) -> Callable[[str], None]:
    """A line-logging callable from a callable, a ``logging.Logger`` or ``None`` (this module's logger)."""
    if log is None:
        return _log.info
    return log.info if hasattr(log, "info") else log


class PhaseRunner:
    """One phase of one training run in ``out_dir`` (see the module docstring).

    Args:
        out_dir: folder of ``last.pt``, ``checkpoint.pt``, ``losses.csv``.
        recipe: name stored in the checkpoints (a ``model_type``, or ``"lipnet"`` / ``"syncnet"``).
        phase_name, phase_index: which phase of the curriculum.
        steps: optimisation steps of the phase.
        identity: plain-container dict; a ``last.pt`` / ``checkpoint.pt`` with another identity is
            ignored, never mixed in.
        emit: a callable taking a log line.
        config: plain settings stored in every checkpoint.
        log_every, checkpoint_every: steps between ``losses.csv`` rows / ``last.pt`` saves.
        progress_interval: seconds between progress-bar refreshes.
        world: the training processes (:mod:`a2v.training.distributed`); only rank 0 writes
            ``losses.csv`` and checkpoints, and every process waits for it at the end.
    """

    def __init__(self, out_dir: str | Path, recipe: str, phase_name: str, phase_index: int, steps: int, identity: dict,
                 emit: Callable[[str], None], config: dict | None = None, log_every: int = 10, checkpoint_every: int = 500,
                 progress_interval: float = 30.0, world: World = SINGLE):
        self.world = world
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.final, self.last = self.out_dir / FINAL, self.out_dir / LAST
        self.recipe, self.phase_name, self.phase_index = recipe, phase_name, int(phase_index)
        self.steps, self.identity, self.emit, self.config = int(steps), identity, emit, config or {}
        self.log_every, self.checkpoint_every, self.progress_interval = int(log_every), int(checkpoint_every), progress_interval
        self.start_step, self.elapsed, self.resumed = 0, 0.0, False
        self._resume_rng: torch.Tensor | None = None  # last.pt's torch RNG state, set back by run()

    def _ours(self, state: dict) -> bool:
        return (state.get("recipe") == self.recipe and state.get("identity") == self.identity
                and state.get("phase_index") == self.phase_index and state.get("phase_name") == self.phase_name)

    def complete(self) -> Path | None:
        """``checkpoint.pt`` when it holds this phase, finished; else ``None``."""
        if self.final.exists():
            done = load_checkpoint(self.final)
            if done.get("complete") and done.get("step") == self.steps and self._ours(done):
                self.emit(f"[{self.phase_name}] {self.final} is complete; nothing to do")
                return self.final
        return None

    def start(self, networks: Mapping[str, torch.nn.Module], optimizers: Mapping[str, torch.optim.Optimizer],
              device: torch.device | str, init: str | Path | None = None) -> dict | None:
        """Load this phase's starting point into ``networks`` / ``optimizers`` (see the module docstring).

        Returns:
            The ``state`` entry of the checkpoint started from (``last.pt`` or ``init``), or ``None``
            for a fresh start (the caller then computes it, e.g. fits the normaliser).

        Raises:
            FileNotFoundError, ValueError: ``init`` missing or not an a2v checkpoint of this recipe.
        """
        source = None
        if self.last.exists():
            last = load_checkpoint(self.last, map_location=device)
            if self._ours(last) and last.get("step", 0) < self.steps:
                source = last
                self.start_step, self.elapsed, self.resumed = int(last["step"]), float(last.get("elapsed_s", 0.0)), True
                self._resume_rng = last["torch_rng"].cpu()
                self.emit(f"[{self.phase_name}] resuming from {self.last} at step {self.start_step}/{self.steps}")
            else:
                self.emit(f"[{self.phase_name}] ignoring {self.last}: it belongs to another phase or run")
        if source is None and init is not None:
            source = load_checkpoint(init, map_location=device, recipe=self.recipe)
            self.emit(f"[{self.phase_name}] initialising from {init} (phase {source.get('phase_name')!r}, step {source.get('step')})")
        if source is None:
            return None
        for name, net in networks.items():
            if name in source["networks"]:
                net.load_state_dict(source["networks"][name])
            elif self.resumed:
                raise ValueError(f"{self.last}: no network {name!r}")
            else:
                self.emit(f"[{self.phase_name}] network {name!r} is not in {init}: fresh weights")
        for name, opt in optimizers.items():
            if name not in source["optimizers"]:
                continue
            mine = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
            opt.load_state_dict(source["optimizers"][name])
            if not self.resumed:  # this phase's hyper-parameters win over the previous phase's
                for group, hyper in zip(opt.param_groups, mine):
                    group.update(hyper)
        return source.get("state", {})

    def run(
        self,
        batches: Iterable,
        step_fn: Callable[[object], Mapping[str, torch.Tensor]],
        networks: Mapping[str, torch.nn.Module],
        optimizers: Mapping[str, torch.optim.Optimizer],
        state: dict,
        columns: list[str],
        log_values: Callable[[], Mapping[str, float]] | None = None,
        info: dict | None = None,
        finish: Callable[[], dict] | None = None,
    ) -> Path:
        """Run steps ``start_step … steps − 1`` and write ``checkpoint.pt``.

        Args:
            batches: one batch per remaining step.
            step_fn: batch → named scalar terms (the step does its own backward and optimiser steps).
            networks, optimizers: what is saved (networks in train mode while running).
            state: data-derived entries for every checkpoint (tensors / plain containers).
            columns: the names ``step_fn`` returns, in ``losses.csv`` order.
            log_values: extra values per logged row (e.g. ρ), called at each log.
            info: plain facts stored in the checkpoint (e.g. the perceptual backbone).
            finish: called after the last step (networks in eval mode); its dict joins ``checkpoint.pt``.

        Returns:
            ``out_dir/checkpoint.pt``.

        Raises:
            RuntimeError: the batches ran out before ``steps``.
        """
        extra = list((log_values() if log_values else {}).keys())
        main = self.world.is_main
        log = LossLog(self.out_dir / LOSSES, ["step", *columns, *extra, "seconds"], self.start_step if self.resumed else None) if main else None
        t0 = time.perf_counter()

        def snapshot(step: int, complete: bool, more: dict | None = None) -> dict:
            return {
                "recipe": self.recipe, "config": self.config, "identity": self.identity,
                "phase_index": self.phase_index, "phase_name": self.phase_name, "phase_steps": self.steps,
                "step": step, "complete": complete, "loss_columns": list(columns), "value_columns": extra,
                "networks": {k: v.state_dict() for k, v in networks.items()},
                "optimizers": {k: v.state_dict() for k, v in optimizers.items()},
                "state": state, "info": info or {},
                "elapsed_s": self.elapsed + time.perf_counter() - t0, "torch_rng": torch.get_rng_state(), **(more or {}),
            }

        for net in networks.values():
            net.train()
        step = self.start_step
        bar = tqdm(total=self.steps, initial=step, desc=self.phase_name, file=sys.stderr, mininterval=self.progress_interval,
                   disable=not main)
        try:
            schedule = getattr(step_fn, "set_step", None)  # a step may schedule its lr by the phase's step
            batches = iter(batches)  # a DataLoader draws its base seed from the global RNG here
            if self._resume_rng is not None:
                # the RNG stream goes on where last.pt left it only if it is set back after everything
                # built since start() (loss networks, the loader's seed) has drawn from it
                torch.set_rng_state(self._resume_rng)
            for batch in batches:
                if schedule is not None:
                    schedule(step, self.steps)
                terms = step_fn(batch)
                step += 1
                bar.update(1)
                log_now = step == 1 or step % self.log_every == 0 or step == self.steps
                if log_now and self.world.active:  # the logged terms are the global batch's means
                    terms = mean_over_processes(terms, self.world)
                if main and log_now:
                    row = {"step": step, "seconds": round(self.elapsed + time.perf_counter() - t0, 3)}
                    row.update({k: f"{float(v):.6g}" for k, v in terms.items()})
                    if log_values:
                        row.update({k: f"{float(v):.6g}" for k, v in log_values().items()})
                    log.write(row)
                    bar.set_postfix({k: f"{float(v):.3g}" for k, v in terms.items()}, refresh=False)
                if main and step % self.checkpoint_every == 0 and step < self.steps:
                    save_checkpoint(self.last, snapshot(step, False))
                    self.emit(f"[{self.phase_name}] step {step}/{self.steps}: saved {self.last}")
                if step >= self.steps:
                    break
        finally:
            bar.close()
            if log is not None:
                log.close()
        if step != self.steps:
            raise RuntimeError(f"[{self.phase_name}] the batches stopped at step {step} of {self.steps}")
        for net in networks.values():
            net.eval()
        more = finish() if finish else {}
        if main:
            save_checkpoint(self.final, snapshot(step, True, more))
            if self.last.exists():
                self.last.unlink()
        barrier(self.world)  # the others return once checkpoint.pt is written
        self.emit(f"[{self.phase_name}] done: {step} steps in {self.elapsed + time.perf_counter() - t0:.1f} s -> {self.final}")
        return self.final


def judge_runner(out_dir: str | Path, name: str, phase_name: str, model_cfg, settings, train_clips,
                 emit: Callable[[str], None]) -> PhaseRunner:
    """The runner of a one-phase, fixed-step run (the lip-reader's, SyncNet's): checkpoints carry
    ``name``; the run is identified by ``model_cfg`` (``to_dict()``), ``settings`` (a dataclass with
    ``steps``, ``log_every``, ``checkpoint_every``, ``progress_interval``) and its training clips."""
    config = {"model": model_cfg.to_dict(), "training": plain(vars(settings))}
    identity = {"train_clips": [[str(p), str(c)] for p, c in train_clips], **config}
    return PhaseRunner(out_dir, name, phase_name, 0, settings.steps, identity, emit, config, settings.log_every,
                       settings.checkpoint_every, settings.progress_interval)


def single_loss_step(loss_fn: Callable[[object], torch.Tensor], optimizer: torch.optim.Optimizer, name: str = "loss"):
    """A step function for a one-loss, one-optimiser run: ``{name: loss}`` after backward and ``optimizer.step()``."""

    def step(batch) -> dict[str, torch.Tensor]:
        loss = loss_fn(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {name: loss.detach()}

    return step
