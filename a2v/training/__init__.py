"""a2v.training — the generic training core: phase vocabulary, data windows, the phase runner,
checkpoints; and the judges' training runs (LipNet, SyncNet).

Entry point for a model: :func:`a2v.training.loop.train_phase` (the model itself is a recipe,
:mod:`a2v.recipes`; ``loop`` imports the recipe registry, so it is not imported here). Nothing
here names a model.
"""

from a2v.features.normalizer import FeatureNormalizer, fit_normalizer
from a2v.training.checkpoint import load_checkpoint, save_checkpoint
from a2v.training.data import FrameDataset, StepBatchSampler, count_frames, open_shard, phase_seed, resolve_clips
from a2v.training.phases import Phase, parse_phase, parse_phases
from a2v.training.runner import PhaseRunner, single_loss_step
from a2v.training.settings import TrainingSettings

__all__ = [
    "FeatureNormalizer",
    "FrameDataset",
    "Phase",
    "PhaseRunner",
    "StepBatchSampler",
    "TrainingSettings",
    "count_frames",
    "fit_normalizer",
    "load_checkpoint",
    "open_shard",
    "parse_phase",
    "parse_phases",
    "phase_seed",
    "resolve_clips",
    "save_checkpoint",
    "single_loss_step",
]
