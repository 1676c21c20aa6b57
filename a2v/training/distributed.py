"""Data-parallel training over several processes, started by ``torchrun`` (one process per GPU, or
per CPU share), for every recipe through the generic runner.

``torchrun --nproc_per_node N -m a2v train …`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_world` joins the process group (NCCL on GPUs, gloo on
CPUs) and every process then:

* builds the same networks from the same seed and loads the same checkpoint (``last.pt`` or the
  previous phase's), then takes rank 0's weights (a broadcast, so that they are equal bit for bit);
* draws the same **global** batch of ``training.batch_size`` samples per step
  (:class:`~a2v.training.data.StepBatchSampler`) and keeps its share, samples ``rank, rank + N, …``
  (:class:`ShardedBatches`; ``batch_size`` must be a multiple of N);
* averages every optimiser's gradients over the processes before the optimiser steps
  (:func:`average_gradients`): the update is the one of a single process on the global batch, as
  with PyTorch's ``DistributedDataParallel`` (Li et al., VLDB 2020);
* rank 0 alone writes ``losses.csv`` (the terms averaged over the processes at each logged step), ``last.pt`` and ``checkpoint.pt``;
  the others wait for it at the end. Checkpoints hold plain state dicts: they load on one device.

a2v: the gradients are all-reduced by an optimiser step pre-hook rather than by wrapping the
networks in ``DistributedDataParallel``: recipes call their networks' parts directly (CRAN's
``D.trunk`` and heads, MAN's predictor, the frozen losses), and DDP averages only the gradients of
a wrapped module's ``forward``. The arithmetic is DDP's (sum over processes / N); its bucketing and
overlap of communication with the backward pass are not reproduced.

Batch normalisation: on GPUs the networks' BatchNorm layers become ``SyncBatchNorm`` (statistics over
the global batch, as one process would compute them); gloo has no SyncBatchNorm, so on CPUs each
process normalises its own share (logged). Equality with one process therefore holds exactly for
networks without batch statistics and without per-sample noise, and in distribution otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    """Where this process sits among the training processes.

    Attributes:
        rank: 0 … size − 1 (rank 0 writes the outputs). size: number of processes.
        local_rank: index on this machine (the GPU it uses).
    """

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        """More than one process."""
        return self.size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes ``losses.csv`` and the checkpoints."""
        return self.rank == 0


SINGLE = World()
"""One process: nothing is shared."""


def world_from_env(env: Mapping[str, str] | None = None) -> World:
    """The :class:`World` that ``torchrun`` describes in ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``
    (absent: one process).

    Raises:
        ValueError: values that are not integers, or a rank outside ``0 … WORLD_SIZE − 1``.
    """
    env = os.environ if env is None else env
    try:
        size = int(env.get("WORLD_SIZE", "1"))
        rank = int(env.get("RANK", "0"))
        local = int(env.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise ValueError(f"torchrun environment: RANK/WORLD_SIZE/LOCAL_RANK must be integers ({exc})") from exc
    if size < 1 or not 0 <= rank < size:
        raise ValueError(f"torchrun environment: RANK {rank} outside 0 … WORLD_SIZE − 1 = {size - 1}")
    return World(rank, size, local)


def init_world(device: torch.device | str) -> tuple[World, torch.device]:
    """Join the process group when started by ``torchrun`` with more than one process.

    Args:
        device: the resolved device; ``cuda`` becomes ``cuda:LOCAL_RANK``.

    Returns:
        ``(world, device)``; with one process, ``(SINGLE, device)`` and nothing is initialised.

    Raises:
        ValueError: a bad torchrun environment. RuntimeError: the group cannot be joined.
    """
    world = world_from_env()
    device = torch.device(device)
    if not world.active:
        return SINGLE, device
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", rank=world.rank, world_size=world.size)
    return world, device


def close_world(world: World) -> None:
    """Leave the process group (after every process has arrived)."""
    if world.active and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def barrier(world: World) -> None:
    """Wait for every process (no-op with one)."""
    if world.active:
        dist.barrier()


def prepare_networks(networks: Mapping[str, torch.nn.Module], world: World, device: torch.device) -> dict[str, torch.nn.Module]:
    """``SyncBatchNorm`` on GPUs (see the module docstring); networks otherwise unchanged."""
    if not world.active or torch.device(device).type != "cuda":
        return dict(networks)
    return {k: torch.nn.SyncBatchNorm.convert_sync_batchnorm(v) for k, v in networks.items()}


def broadcast_networks(networks: Mapping[str, torch.nn.Module], world: World) -> None:
    """Every network's parameters and buffers set to rank 0's."""
    if not world.active:
        return
    for net in networks.values():
        for t in [*net.parameters(), *net.buffers()]:
            dist.broadcast(t.data, src=0)


def _average(optimizer: torch.optim.Optimizer, size: int) -> None:
    params = [p for g in optimizer.param_groups for p in g["params"]]
    if not params:
        return
    # which parameters have a gradient on some process (a frozen or unused one has none anywhere)
    has = torch.tensor([p.grad is not None for p in params], dtype=torch.int32, device=params[0].device)
    dist.all_reduce(has)
    used = [p for p, h in zip(params, has.tolist()) if h > 0]
    if not used:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in used]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= size
    offset = 0
    for p, g in zip(used, grads):
        n = g.numel()
        p.grad = flat[offset:offset + n].view_as(p).clone()
        offset += n


def average_gradients(optimizers: Mapping[str, torch.optim.Optimizer], world: World) -> None:
    """Register on each optimiser a step pre-hook that replaces its parameters' gradients by their
    mean over the processes (no-op with one process)."""
    if not world.active:
        return
    for opt in optimizers.values():
        opt.register_step_pre_hook(lambda o, args, kwargs, n=world.size: _average(o, n))


def mean_over_processes(terms: Mapping[str, torch.Tensor], world: World) -> dict[str, torch.Tensor]:
    """Scalar terms averaged over the processes (every process must call it at the same step)."""
    if not world.active or not terms:
        return dict(terms)
    keys = list(terms)
    values = torch.stack([torch.as_tensor(terms[k], dtype=torch.float64).detach().cpu().reshape(()) for k in keys])
    if dist.get_backend() == "nccl":
        values = values.cuda()
    dist.all_reduce(values)
    values = (values / world.size).cpu()
    return {k: values[i] for i, k in enumerate(keys)}


class ShardedBatches:
    """This process's share of each global batch: items ``rank, rank + size, …``.

    Args:
        batches: global batches (lists of sample keys), e.g. a
            :class:`~a2v.training.data.StepBatchSampler`.
        world: the processes. batch_size: the global batch size.

    Raises:
        ValueError: ``batch_size`` not a multiple of the number of processes.
    """

    def __init__(self, batches: Iterable[list], world: World, batch_size: int):
        if batch_size % world.size:
            raise ValueError(f"training.batch_size {batch_size} must be a multiple of the {world.size} training processes")
        self.batches, self.world = batches, world

    def __iter__(self) -> Iterator[list]:
        for batch in self.batches:
            yield batch[self.world.rank::self.world.size]

    def __len__(self) -> int:
        return len(self.batches)


__all__ = ["SINGLE", "ShardedBatches", "World", "average_gradients", "barrier", "broadcast_networks", "close_world",
           "init_world", "mean_over_processes", "prepare_networks", "world_from_env"]
