"""The run settings every training run shares (the ``training`` section's common keys), and the
precision choices they imply.

A recipe's own ``training`` dataclass subclasses :class:`TrainingSettings` and adds its keys, so
each key is declared once (:mod:`a2v.recipes.base`). The lip-reader and SyncNet runs use
:class:`RunSettings` (a fixed number of steps).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import torch

PRECISIONS = ("auto", "bf16", "fp32")
"""``training.precision``: auto = bf16 autocast on CUDA, float32 on the CPU."""


@dataclass
class TrainingSettings:
    """Keys of an experiment's ``training`` section that the phase runner reads.

    Attributes:
        batch_size: samples per optimisation step.
        lr: Adam learning rate; betas: Adam (β1, β2), each in [0, 1).
        seed: base seed; phase k's weights init and batch order derive from ``(seed, k)``.
        checkpoint_every: steps between ``last.pt`` saves; log_every: steps between ``losses.csv``
            rows (step 1 and the last step are always logged).
        num_workers: DataLoader worker processes.
        progress_interval: seconds between progress-bar refreshes (stderr).
        precision: ``"auto"`` | ``"bf16"`` | ``"fp32"`` (:func:`use_bf16`).
        channels_last: memory format of weights and 4-D batches; ``None`` → on CUDA only.

    Raises:
        ValueError: a count < 1, lr <= 0, betas outside [0, 1), unknown precision.
    """

    batch_size: int = 8
    lr: float = 0.002
    betas: tuple[float, float] = (0.0, 0.9)
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 10
    num_workers: int = 0
    progress_interval: float = 30.0
    precision: str = "auto"
    channels_last: bool | None = None

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"training.precision must be one of {PRECISIONS}, got {self.precision!r}")
        self.betas = tuple(float(b) for b in self.betas)
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"training.betas must be two numbers in [0, 1), got {self.betas}")
        for name in ("batch_size", "checkpoint_every", "log_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"training.{name} must be >= 1, got {getattr(self, name)}")
        if self.num_workers < 0:
            raise ValueError(f"training.num_workers must be >= 0, got {self.num_workers}")
        if not self.lr > 0:
            raise ValueError(f"training.lr must be > 0, got {self.lr}")


RUN_COUNTS = ("batch_size", "steps", "checkpoint_every", "log_every")


def check_run_settings(settings, section: str) -> None:
    """Validate the common fields of a single-phase run's settings (counts >= 1, lr > 0).

    Raises:
        ValueError: naming ``<section>.<field>``.
    """
    for name in RUN_COUNTS:
        if int(getattr(settings, name)) < 1:
            raise ValueError(f"{section}.{name} must be >= 1, got {getattr(settings, name)}")
    if not settings.lr > 0:
        raise ValueError(f"{section}.lr must be > 0, got {settings.lr}")


def use_bf16(precision: str, device: torch.device) -> bool:
    """Whether ``training.precision`` means bf16 autocast on ``device`` (``"auto"``: on CUDA only).

    Raises:
        ValueError: unknown precision.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return precision == "bf16" or (precision == "auto" and torch.device(device).type == "cuda")


def autocast(device: torch.device, bf16: bool):
    """bf16 autocast on ``device`` when ``bf16`` (:func:`use_bf16` resolved once per run), else a no-op context."""
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16) if bf16 else nullcontext()


def use_channels_last(channels_last: bool | None, device: torch.device) -> bool:
    """``training.channels_last`` resolved for ``device`` (``None``: on CUDA only)."""
    return torch.device(device).type == "cuda" if channels_last is None else bool(channels_last)


def parse_run_section(name: str, section: dict | None, model_cls, training_cls) -> tuple:
    """Split a judge's ``{model, training, weights}`` config section into ``(model_cls, training_cls)`` settings.

    Raises:
        ValueError: unknown keys or bad values, naming the section.
    """
    from a2v.settings import dataclass_from_dict

    section = dict(section or {})
    unknown = sorted(set(section) - {"model", "training", "weights"})
    if unknown:
        raise ValueError(f"{name}: unknown keys {unknown}; known: ['model', 'training', 'weights']")
    return model_cls.from_dict(section.get("model")), dataclass_from_dict(training_cls, section.get("training"), f"{name}.training")
