"""Checkpoints of every a2v training run: atomic save, ``weights_only`` load.

One format for every run (a model recipe's phase, the lip-reader, SyncNet). A checkpoint is a
dict of tensors and plain containers only (loadable with ``torch.load(path, weights_only=True)``):

==================  ============================================================================
key                 content
==================  ============================================================================
``format``          ``"a2v"``; ``format_version`` ``2``; ``a2v_version`` of the writer
``recipe``          what was trained: a ``model_type`` (``"man"``, ``"pkg.module:Class"``) or a
                    judge (``"lipnet"``, ``"syncnet"``)
``config``          the settings the run was built from (plain containers)
``identity``        what a resumed run must match (settings, training clips)
``phase_index``     index of the phase in the curriculum; ``phase_name``; ``phase`` (its dict)
``step``            optimisation steps done in this phase; ``complete`` (bool)
``loss_columns``    the loss terms of ``losses.csv``; ``value_columns`` the other logged values
``networks``        network name → ``state_dict()``
``optimizers``      optimiser name → ``state_dict()``
``state``           data-derived state (e.g. the feature normaliser), tensors/plain containers
``info``            facts of the run (e.g. the perceptual backbone), plain containers
``elapsed_s``       training seconds spent in this phase so far; ``torch_rng``
==================  ============================================================================
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch

import a2v

FORMAT = "a2v"
FORMAT_VERSION = 2


def plain(obj):
    """Convert a config-like object to plain containers (dict/list/str/int/float/bool/None).

    Paths become strings, tuples lists, numpy scalars Python numbers.

    Raises:
        TypeError: an object of another type.
    """
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    raise TypeError(f"cannot store a {type(obj).__name__} in a checkpoint config")


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """Write ``state`` with ``torch.save`` atomically (temporary file beside ``path``, then ``os.replace``).

    ``format``, ``format_version`` and ``a2v_version`` are added. Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"format": FORMAT, "format_version": FORMAT_VERSION, "a2v_version": a2v.__version__, **state}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load_checkpoint(path: str | Path, map_location: torch.device | str = "cpu", recipe: str | None = None) -> dict:
    """Load an a2v checkpoint with ``torch.load(weights_only=True)``.

    Args:
        recipe: when given, the checkpoint must hold that recipe (or judge).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not an a2v checkpoint, another format version, or another recipe.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    state = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"{path}: not an a2v checkpoint (format {found!r})")
    if state.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: checkpoint format_version {state.get('format_version')!r}, this a2v reads {FORMAT_VERSION}")
    if recipe is not None and state.get("recipe") != recipe:
        raise ValueError(f"{path}: a {state.get('recipe')!r} checkpoint, not {recipe!r}")
    return state
