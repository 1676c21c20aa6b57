"""a2v.training — MAN training: data, phases, checkpoints and the phase loop.

Entry point: :func:`a2v.training.loop.train_phase`. Config keys: :mod:`a2v.training.config`.
"""

from a2v.training.checkpoint import Models, build_models, load_checkpoint, models_from_checkpoint, save_checkpoint
from a2v.training.config import ParsedConfig, TrainingConfig, parse_config
from a2v.training.data import FeatureNormalizer, FrameDataset, StepBatchSampler, count_frames, fit_normalizer, open_shard
from a2v.training.loop import PhaseState, TrainStep, prepare_phase, resolve_clips, train_phase
from a2v.training.phases import MOTION_SOURCES, Phase, parse_phase, parse_phases

__all__ = [
    "MOTION_SOURCES",
    "FeatureNormalizer",
    "FrameDataset",
    "Models",
    "ParsedConfig",
    "PhaseState",
    "TrainStep",
    "Phase",
    "StepBatchSampler",
    "TrainingConfig",
    "build_models",
    "count_frames",
    "fit_normalizer",
    "load_checkpoint",
    "models_from_checkpoint",
    "open_shard",
    "parse_config",
    "parse_phase",
    "parse_phases",
    "prepare_phase",
    "resolve_clips",
    "save_checkpoint",
    "train_phase",
]
