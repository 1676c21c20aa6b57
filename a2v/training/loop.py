"""Training one curriculum phase of any model recipe, resumably.

:func:`train_phase` is what the ``train`` rule runs: it asks the experiment's recipe
(:mod:`a2v.recipes`; ``config["model_type"]``) for its networks, optimisers, training windows and
step, and hands them to the phase runner (:class:`a2v.training.runner.PhaseRunner`). It names no
model.

Per phase ``k`` (0-based) of a run seeded ``s`` (``training.seed``): fresh weights are drawn, and
the batches ordered, from :func:`a2v.training.data.phase_seed` ``(s, k)`` — each phase its own
order. A phase given in ``epochs`` runs ``ceil(epochs · samples / batch_size)`` steps, samples as
the recipe counts them (:meth:`Recipe.n_samples`; per-frame recipes: frames).

Outputs in ``out_dir``: ``losses.csv``, ``last.pt`` every ``checkpoint_every`` steps,
``checkpoint.pt`` when the phase is complete (:mod:`a2v.training.runner`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from a2v.recipes import make_recipe
from a2v.training.checkpoint import plain
from a2v.training.data import StepBatchSampler, phase_seed, resolve_clips
from a2v.training.distributed import SINGLE, ShardedBatches, World, average_gradients, broadcast_networks, prepare_networks
from a2v.training.runner import PhaseRunner, emitter
from a2v.training.settings import use_channels_last

def train_phase(
    config: dict,
    shard_paths: Sequence[str | Path],
    train_clips: Sequence[tuple[str, str]],
    phase_index: int,
    out_dir: str | Path,
    init_checkpoint: str | Path | None = None,
    device: torch.device | str = "cpu",
    log: Callable[[str], None] | logging.Logger | None = None,
    pretrained: dict[str, str | Path] | None = None,
    world: World = SINGLE,
) -> Path:
    """Run (or resume) phase ``phase_index`` of an experiment's curriculum.

    Args:
        config: ``model_type`` (a recipe name or ``package.module:Class``), ``model``,
            ``training``, ``phases``; anything else (``preprocess``, ``experiment``…) is stored
            in the checkpoints as it is.
        shard_paths: HDF5 feature shards (``results/features/{dataset}/{shard}.h5``).
        train_clips: ``(shard path or speaker, clip id)`` pairs to train on (:func:`resolve_clips`).
        phase_index: which entry of ``config["phases"]`` (0-based).
        out_dir: folder for ``losses.csv``, ``last.pt`` and ``checkpoint.pt``.
        init_checkpoint: the previous phase's ``checkpoint.pt`` (networks and optimisers by name,
            data state); ``None`` for the first phase (the recipe fits its data state, e.g. the
            feature normaliser, on ``train_clips``).
        device: where to train.
        log: a callable taking a line, or a ``logging.Logger``.
        pretrained: checkpoints of the networks the recipe pretrains (name → path; the
            ``pretrain`` rule's outputs), for the recipe's :meth:`~a2v.recipes.base.Recipe.needed_pretrained`.
        world: the data-parallel processes (:mod:`a2v.training.distributed`; ``torchrun``): each
            takes its share of every global batch of ``training.batch_size``, gradients are
            averaged, rank 0 writes the outputs.

    Returns:
        Path of ``out_dir/checkpoint.pt``.

    Raises:
        ValueError: unknown model type, invalid sections, phase index or clip list; a batch size
            that the processes cannot share evenly.
    """
    emit = emitter(log)
    device = torch.device(device)
    if "model_type" not in config:
        raise ValueError("config has no 'model_type' (a recipe name such as 'man', or 'package.module:Class')")
    recipe = make_recipe(config["model_type"], config.get("model"), config.get("training"), config.get("phases") or [],
                         config.get("pretrained"))
    recipe.use_pretrained(pretrained or {})
    if not 0 <= phase_index < len(recipe.phases):
        raise ValueError(f"phase_index {phase_index} out of range: config has {len(recipe.phases)} phases")
    tcfg = recipe.training
    clips = resolve_clips(shard_paths, train_clips)
    phase = recipe.phases[phase_index].resolved(recipe.n_samples(clips), tcfg.batch_size)
    identity = {"model_type": recipe.name, **recipe.train_config(), "train_clips": [[str(p), str(c)] for p, c in clips]}
    if recipe.pretrained_paths:
        identity["pretrained_checkpoints"] = dict(recipe.pretrained_paths)
    runner = PhaseRunner(out_dir, recipe.name, phase.name, phase_index, phase.steps, identity, emit, plain(config),
                         tcfg.log_every, tcfg.checkpoint_every, tcfg.progress_interval, world)
    if (done := runner.complete()) is not None:
        return done

    seed = phase_seed(tcfg.seed, phase_index)
    torch.manual_seed(seed)
    networks = prepare_networks({k: v.to(device) for k, v in recipe.build().items()}, world, device)
    if use_channels_last(tcfg.channels_last, device):
        networks = {k: v.to(memory_format=torch.channels_last) for k, v in networks.items()}
    optimizers = recipe.optimizers(networks)
    state = runner.start(networks, optimizers, device, init_checkpoint)
    broadcast_networks(networks, world)
    average_gradients(optimizers, world)
    if state is None:
        state = recipe.fit_state(clips)
        emit(f"[{phase.name}] fresh start; data state ({', '.join(state) or 'none'}) fitted on {len(clips)} clips")
    dataset = recipe.dataset(clips, state)
    sampler = StepBatchSampler(len(dataset), tcfg.batch_size, seed, runner.start_step, phase.steps)
    loader = DataLoader(dataset, batch_sampler=ShardedBatches(sampler, world, tcfg.batch_size) if world.active else sampler, num_workers=tcfg.num_workers, pin_memory=device.type == "cuda")
    step = recipe.trainer(networks, optimizers, phase, device, emit)
    sizes = ", ".join(f"{k} {sum(p.numel() for p in v.parameters()) / 1e6:.2f} M" for k, v in networks.items())
    emit(
        f"[{phase.name}] {recipe.name}: {sizes}; {len(clips)} clips, {len(dataset)} samples, {recipe.image_size}px, "
        f"batch {tcfg.batch_size}, steps {runner.start_step}->{phase.steps}, losses {phase.active()}, "
        f"discriminators {list(phase.discriminators) or 'off'}, device {device}"
        + (f", process {world.rank + 1}/{world.size} ({tcfg.batch_size // world.size} samples of each global batch)" if world.active else "")
        + (f", {step.describe()}" if step.describe() else "")
    )
    return runner.run(loader, step, networks, optimizers, state, step.columns,
                      log_values=lambda: recipe.log_values(networks), info=dict(step.info))
