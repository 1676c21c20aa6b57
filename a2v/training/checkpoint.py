"""Checkpoints of a MAN training phase: atomic save, ``weights_only`` load, model construction.

A checkpoint is a dict of tensors and plain containers only (loadable with
``torch.load(path, weights_only=True)``):

==================  ============================================================================
key                 content
==================  ============================================================================
``format``          ``"a2v-man"``; ``format_version`` ``1``
``a2v_version``     ``a2v.__version__`` of the writer
``config``          the full config dict the phase ran with (plain containers)
``model_config``    ``ManConfig.to_dict()``; ``predictor_config``, ``discriminator_config``
``phase_index``     index of the phase in ``config["phases"]``; ``phase_name``; ``phase_steps``
``step``            generator steps done in this phase; ``complete`` (bool)
``generator``       ``ManGenerator.state_dict()``; ``predictor``; ``discriminator``
``opt_g``           Adam state of generator + predictor; ``opt_d`` of the discriminator
``normalizer``      :meth:`FeatureNormalizer.state_dict` (MFCC/mel mean and std)
``elapsed_s``       training seconds spent in this phase so far
``torch_rng``       ``torch.get_rng_state()``
==================  ============================================================================
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

import a2v
from a2v.models.discriminators import DiscriminatorConfig, MultiScalePatchGAN
from a2v.models.man import ManConfig, ManGenerator
from a2v.models.predictors import PredictorConfig, build_predictor

FORMAT = "a2v-man"
FORMAT_VERSION = 1


@dataclass
class Models:
    """The three networks of MAN, built from one configuration."""

    config: ManConfig
    generator: ManGenerator
    predictor: nn.Module
    discriminator: MultiScalePatchGAN


def build_models(man: ManConfig, pred: PredictorConfig, disc: DiscriminatorConfig) -> Models:
    """Construct generator, predictor and discriminator (on the CPU, in training mode)."""
    return Models(man, ManGenerator(man), build_predictor(man, pred), MultiScalePatchGAN.from_config(disc))


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


def save_checkpoint(path: str | Path, state: dict, fmt: str = FORMAT) -> Path:
    """Write ``state`` with ``torch.save`` atomically (temporary file beside ``path``, then ``os.replace``).

    ``format`` (``fmt``: ``"a2v-man"``, ``"a2v-lipnet"``, …), ``format_version`` and
    ``a2v_version`` are added. Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"format": fmt, "format_version": FORMAT_VERSION, "a2v_version": a2v.__version__, **state}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load_checkpoint(path: str | Path, map_location: torch.device | str = "cpu", fmt: str = FORMAT) -> dict:
    """Load a checkpoint of format ``fmt`` with ``torch.load(weights_only=True)``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not an a2v checkpoint of that format, or another format version.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    state = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(state, dict) or state.get("format") != fmt:
        raise ValueError(f"{path}: not an a2v {fmt} checkpoint")
    if state.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: checkpoint format_version {state.get('format_version')!r}, this a2v reads {FORMAT_VERSION}")
    return state


def models_from_checkpoint(state: dict) -> Models:
    """Rebuild the networks stored in a loaded checkpoint and load their weights (CPU)."""
    man = ManConfig.from_dict(state["model_config"])
    pred = PredictorConfig.from_dict(state["predictor_config"])
    disc = DiscriminatorConfig.from_dict(state["discriminator_config"])
    models = build_models(man, pred, disc)
    models.generator.load_state_dict(state["generator"])
    models.predictor.load_state_dict(state["predictor"])
    models.discriminator.load_state_dict(state["discriminator"])
    return models
