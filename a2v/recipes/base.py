"""The recipe interface: everything that is one model's, in one class.

The phase runner (:mod:`a2v.training.runner`), the ``train`` / ``generate_test`` / ``report``
stages and ``a2v generate`` name no model; they ask the experiment's recipe
(:func:`a2v.recipes.get_recipe`) for:

==========================  ====================================================================
member                      what the recipe says
==========================  ====================================================================
``Model``, ``Training``     dataclasses of its ``model`` and ``training`` sections (``Training``
                            subclasses :class:`~a2v.training.settings.TrainingSettings`); unknown
                            keys raise ``ValueError``
``loss_keys``               its loss names (a phase's ``losses`` weights them; 0 skips a term)
``discriminators``          its discriminator names (a phase's ``discriminators`` turns them on)
``phase_options``           its own phase keys → defaults; :meth:`default_losses`,
                            :meth:`check_phase` for defaults and combinations
``build()``                 named networks (``{"generator": …, "discriminator": …}``)
``optimizers(networks)``    named optimisers (default: one Adam over every network)
``frame_features``,         the training windows: which shard features a sample holds and how
``n_prev``                  many previous frames (:class:`~a2v.training.data.FrameDataset`);
                            override :meth:`dataset` / :meth:`n_samples` for other windows
``fit_state(clips)``        data-derived state kept in the checkpoint (default: the MFCC/mel
                            normaliser)
``trainer(…)``              one training step of a phase → named loss terms (default: a weighted
                            sum of :meth:`losses` on one optimiser)
``generate_stream(…)``      inference: reference face + chunks of audio features → blocks of
                            frames, recurrent state carried across chunks (``generate(…)``: the
                            blocks of one whole clip, concatenated)
``generation_features``     the shard features generation needs
``facts(checkpoints)``      the lines the report shows about the model (and ``warnings``,
                            ``values_title`` for what :meth:`log_values` logs)
``pretrained_networks``     networks its losses use that are trained before phase 1 by their own
                            rule (name → ``"module:function"`` trainer, e.g. OneShotA2V's sync
                            discriminator); :meth:`needed_pretrained` says which the phases use;
                            the experiment's ``pretrained.<name>`` section configures each
``finetune(…)``             one-shot adaptation to a new reference face before generating
                            (optional; ``a2v generate --finetune-steps``)
==========================  ====================================================================

A minimal recipe defines ``loss_keys``, :meth:`build`, :meth:`losses` and :meth:`generate_frames`
(README, "Adding a model").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from a2v.settings import dataclass_from_dict
from a2v.training.checkpoint import plain
from a2v.features.normalizer import FeatureNormalizer, fit_normalizer
from a2v.training.data import REFERENCES, FrameDataset, count_frames
from a2v.training.phases import Phase, parse_phases
from a2v.training.settings import TrainingSettings


@dataclass
class ModelSettings:
    """A ``model`` section with the one key every recipe has.

    Attributes:
        image_size: side S of the generated frames in pixels (shard crops are resized to it).
    """

    image_size: int = 64

    def __post_init__(self):
        if int(self.image_size) < 8:
            raise ValueError(f"model.image_size must be >= 8, got {self.image_size}")


@dataclass
class FrameTraining(TrainingSettings):
    """:class:`TrainingSettings` plus how per-frame samples are drawn.

    Attributes:
        reference: ``"random"`` (a random frame of the same clip per sample) or ``"first"``.
        cache: hold the training clips in memory.
    """

    reference: str = "random"
    cache: bool = True

    def __post_init__(self):
        super().__post_init__()
        if self.reference not in REFERENCES:
            raise ValueError(f"training.reference must be one of {REFERENCES}, got {self.reference!r}")


class Step:
    """One training step of a phase.

    Attributes:
        columns: the names ``__call__(batch)`` returns (scalar tensors), in ``losses.csv`` order.
        info: plain facts stored in the phase's checkpoints (e.g. the perceptual backbone).
    """

    columns: list[str] = []
    info: dict = {}

    def describe(self) -> str:
        """What the step runs, for the training log (e.g. precision)."""
        return ""

    def set_step(self, step: int, steps: int) -> None:
        """Called by the runner before each step with the 0-based step index and the phase's length
        (e.g. to schedule the learning rate); the default does nothing."""

    def __call__(self, batch: dict) -> dict[str, torch.Tensor]:  # pragma: no cover - interface
        raise NotImplementedError


class WeightedSumStep(Step):
    """The default step: ``total = Σ weight · term`` of :meth:`Recipe.losses`, one optimiser.

    Columns: the phase's active terms (unweighted) and ``total``.
    """

    def __init__(self, recipe: "Recipe", networks: Mapping[str, nn.Module], optimizer: torch.optim.Optimizer, phase: Phase,
                 device: torch.device):
        self.recipe, self.networks, self.opt, self.device = recipe, networks, optimizer, torch.device(device)
        self.weights = phase.active()
        self.columns = [*self.weights, "total"]

    def __call__(self, batch: dict) -> dict[str, torch.Tensor]:
        b = {k: v.to(self.device) for k, v in batch.items()}
        terms = self.recipe.losses(self.networks, b, self.weights)
        missing = sorted(set(self.weights) - set(terms))
        if missing:
            raise ValueError(f"{type(self.recipe).__name__}.losses did not return the weighted terms {missing}")
        total = sum(self.weights[k] * terms[k] for k in self.weights)
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        self.opt.step()
        return {**{k: terms[k].detach() for k in self.weights}, "total": total.detach()}


class Recipe:
    """Base class of a model recipe (see the module docstring).

    Args:
        model, training: the experiment's ``model`` and ``training`` sections (``None`` = defaults).
        phases: its ``phases`` list.

    Attributes:
        name: the ``model_type`` it was made for (set by :func:`a2v.recipes.make_recipe`).
        model, training: the parsed dataclasses; phases: parsed :class:`~a2v.training.phases.Phase` list.

    Raises:
        ValueError: unknown keys or bad values in any of the three sections.
    """

    name: ClassVar[str] = ""
    Model: ClassVar[type] = ModelSettings
    Training: ClassVar[type] = FrameTraining
    loss_keys: ClassVar[tuple[str, ...]] = ()
    discriminators: ClassVar[tuple[str, ...]] = ()
    phase_options: ClassVar[dict] = {}
    frame_features: ClassVar[tuple[str, ...]] = ("mfcc",)
    n_prev: ClassVar[int] = 0
    generation_features: ClassVar[tuple[str, ...]] = ("mfcc",)
    values_title: ClassVar[str] = "Values logged beside the losses"
    pretrained_networks: ClassVar[dict[str, str]] = {}

    def __init__(self, model: dict | None = None, training: dict | None = None, phases: Sequence[dict] = (),
                 pretrained: dict | None = None):
        pretrained = dict(pretrained or {})
        unknown = sorted(set(pretrained) - set(self.pretrained_networks))
        if unknown:
            raise ValueError(f"pretrained: unknown networks {unknown}; {type(self).__name__} pretrains {sorted(self.pretrained_networks) or 'none'}")
        self.pretrained = {k: dict(v or {}) for k, v in pretrained.items()}
        self.pretrained_paths: dict[str, str] = {}
        self.model = self.parse_model(model)
        self.training = dataclass_from_dict(self.Training, training, "training")
        self.phases = parse_phases(list(phases), loss_keys=self.loss_keys, discriminators=self.discriminators,
                                   options=self.phase_options, default_losses=self.default_losses)
        for i, p in enumerate(self.phases):
            self.check_phase(p, i)

    # ------------------------------------------------------------------------ configuration
    def parse_model(self, model: dict | None):
        """The ``model`` section → ``self.Model`` (override for nested sections)."""
        return dataclass_from_dict(self.Model, model, "model")

    def model_dict(self) -> dict:
        """The parsed ``model`` section as plain containers (stored in checkpoints)."""
        return plain(self.model.to_dict() if hasattr(self.model, "to_dict") else asdict(self.model))

    def default_losses(self, discriminators: tuple[str, ...]) -> dict[str, float]:
        """Default weights of a phase with ``discriminators`` on (missing names weigh 0)."""
        return {}

    def check_phase(self, phase: Phase, index: int) -> None:
        """Check a parsed phase's combination of losses, discriminators and options.

        Raises:
            ValueError: a combination the model cannot train.
        """

    def needed_pretrained(self) -> tuple[str, ...]:
        """The :attr:`pretrained_networks` some phase uses (default: all of them, but the lip-sync
        expert (:mod:`a2v.losses.sync_expert`) only when a phase weights ``sync``)."""
        from a2v.losses.sync_expert import SYNC_EXPERT, SYNC_TERM

        sync_used = any(p.losses.get(SYNC_TERM, 0) > 0 for p in self.phases)
        return tuple(n for n in self.pretrained_networks if n != SYNC_EXPERT or sync_used)

    def pretrained_trainer(self, name: str):
        """The trainer of pretrained network ``name``: ``fn(section, train_clips, out_dir, device, log) -> Path``.

        Raises:
            ValueError: a name the recipe does not pretrain, or a trainer that cannot be imported.
        """
        if name not in self.pretrained_networks:
            raise ValueError(f"{type(self).__name__} pretrains {sorted(self.pretrained_networks) or 'no network'}, not {name!r}")
        module_name, _, fn_name = self.pretrained_networks[name].partition(":")
        import importlib

        return getattr(importlib.import_module(module_name), fn_name)

    def use_pretrained(self, paths: Mapping[str, str]) -> None:
        """Give the recipe its pretrained networks' checkpoints (before :meth:`trainer`).

        Raises:
            ValueError: a needed network missing, or one the recipe does not know.
        """
        paths = {k: str(v) for k, v in paths.items()}
        unknown = sorted(set(paths) - set(self.pretrained_networks))
        missing = sorted(set(self.needed_pretrained()) - set(paths))
        if unknown or missing:
            raise ValueError(f"pretrained checkpoints: unknown {unknown}, missing {missing} (this experiment needs {list(self.needed_pretrained())})")
        self.pretrained_paths = paths

    def finetune(self, networks: Mapping[str, nn.Module], state: dict, reference: np.ndarray, steps: int,
                 device: torch.device | str = "cpu", log=None, preprocess: Mapping | None = None) -> dict[str, float]:
        """Adapt the networks to one new reference face (``(S, S, 3)`` uint8) in place, for
        ``steps`` steps; returns facts (e.g. the loss before and after). ``preprocess``: the
        checkpoint's section (feature parameters).

        Raises:
            NotImplementedError: the model has no one-shot fine-tuning.
        """
        raise NotImplementedError(f"{type(self).__name__} has no one-shot fine-tuning")

    @property
    def image_size(self) -> int:
        """S of the frames this model makes, pixels."""
        return int(self.model.image_size)

    # ------------------------------------------------------------------------ networks
    def build(self) -> dict[str, nn.Module]:
        """The named networks, freshly initialised, on the CPU."""
        raise NotImplementedError(f"{type(self).__name__} must define build()")

    def optimizers(self, networks: Mapping[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        """Named optimisers (default: ``{"opt": Adam}`` over every network, ``training.lr`` / ``betas``)."""
        params = [p for net in networks.values() for p in net.parameters()]
        return {"opt": torch.optim.Adam(params, lr=self.training.lr, betas=self.training.betas)}

    # ------------------------------------------------------------------------ data
    def fit_state(self, clips: Sequence[tuple[str, str]]) -> dict:
        """Data-derived state of a fresh run, kept in every checkpoint (default: the MFCC/mel normaliser)."""
        return {"normalizer": fit_normalizer(clips).state_dict()}

    def normalizer(self, state: dict) -> FeatureNormalizer | None:
        """The feature normaliser in ``state`` (``None`` if there is none)."""
        return FeatureNormalizer.from_state_dict(state["normalizer"]) if "normalizer" in state else None

    def n_samples(self, clips: Sequence[tuple[str, str]]) -> int:
        """Training samples in ``clips`` (resolves ``epochs``; default: one per frame)."""
        return count_frames(clips)

    def dataset(self, clips: Sequence[tuple[str, str]], state: dict) -> torch.utils.data.Dataset:
        """Training windows over ``(shard path, clip id)`` pairs; items keyed ``(index, draw)``
        (:class:`~a2v.training.data.StepBatchSampler`)."""
        return FrameDataset(clips, self.normalizer(state), self.image_size, self.frame_features, self.n_prev,
                            self.training.reference, self.training.cache)

    # ------------------------------------------------------------------------ training
    def trainer(self, networks: Mapping[str, nn.Module], optimizers: Mapping[str, torch.optim.Optimizer], phase: Phase,
                device: torch.device, emit) -> Step:
        """The step of ``phase`` (default: :class:`WeightedSumStep` over :meth:`losses`)."""
        if len(optimizers) != 1:
            raise NotImplementedError(f"{type(self).__name__} has {len(optimizers)} optimisers: it must define trainer()")
        return WeightedSumStep(self, networks, next(iter(optimizers.values())), phase, device)

    def losses(self, networks: Mapping[str, nn.Module], batch: dict, weights: Mapping[str, float]) -> dict[str, torch.Tensor]:
        """Unweighted loss terms of a batch (at least the ``weights``' names) for :class:`WeightedSumStep`."""
        raise NotImplementedError(f"{type(self).__name__} must define losses() or trainer()")

    def log_values(self, networks: Mapping[str, nn.Module]) -> dict[str, float]:
        """Extra values logged in ``losses.csv`` beside the loss terms (e.g. MAN's ρ)."""
        return {}

    # ------------------------------------------------------------------------ inference
    def generate(self, networks: Mapping[str, nn.Module], state: dict, reference: np.ndarray, features: Mapping[str, np.ndarray],
                 device: torch.device | str = "cpu", **options) -> np.ndarray:
        """Frames for a reference face and a whole clip's per-frame audio features: the blocks of
        :meth:`generate_stream` fed ``[features]``, concatenated (one code path: a clip's frames
        are the same however its features are chunked).

        Args:
            networks: from :meth:`build`, weights loaded, eval mode.
            state: the checkpoint's data state (normaliser…).
            reference: ``(S, S, 3)`` uint8 RGB aligned face crop, S = :attr:`image_size`.
            features: raw shard features named in :attr:`generation_features`, each ``(T, …)``.
            device: where to run. options: the recipe's :meth:`generate_stream` options (``batch``:
                frames per forward pass; SDGAN's ``seed``…).

        Returns:
            ``(T, S, S, 3)`` uint8 RGB frames.

        Raises:
            ValueError: wrong reference shape or dtype, missing features, lengths that differ, the
                recipe's own (see its :meth:`generate_stream`).
        """
        blocks = list(self.generate_stream(networks, state, reference, [features], device, **options))
        return np.concatenate(blocks) if blocks else np.empty((0, self.image_size, self.image_size, 3), np.uint8)

    def generate_stream(self, networks: Mapping[str, nn.Module], state: dict, reference: np.ndarray,
                        feature_chunks: Iterable[Mapping[str, np.ndarray]], device: torch.device | str = "cpu",
                        batch: int = 16) -> Iterator[np.ndarray]:
        """Frames as a stream: consecutive chunks of a clip's features in, blocks of frames out, any
        state the model carries from frame to frame (a GRU's hidden state, previous frames) carried
        across chunks — memory does not grow with the clip's length.

        The chunks are re-cut into blocks of ``batch`` frames counted from the clip's frame 0
        (:func:`feature_blocks`), so the frames do not depend on how the features were chunked:
        the concatenated blocks equal :meth:`generate` on the whole clip exactly (same ``batch``).

        Args:
            networks, state, reference, device: as :meth:`generate`.
            feature_chunks: an iterable of dicts of the features named in
                :attr:`generation_features`, each ``(n, …)`` raw as in a shard (n >= 1, one n per
                chunk), consecutive frames of one clip.
            batch: frames per forward pass (>= 1).

        Yields:
            ``(n, S, S, 3)`` uint8 RGB frames, ``n = batch`` but for the last block.

        Raises (when iterated):
            ValueError: wrong reference, missing or mis-shaped features, an empty chunk or no chunk
                at all, lengths that differ within a chunk, ``batch < 1``.

        The default runs :meth:`generate_frames` on each block (no recurrence).
        """
        ref = check_reference(reference, self.image_size)
        device = torch.device(device)
        norm = self.normalizer(state)
        ref_t = to_image_tensor(ref).to(device)
        for block in feature_blocks(feature_chunks, self.generation_features, batch):
            tensors = {k: torch.from_numpy(np.asarray(norm.apply(k, a) if norm else a)).to(device) for k, a in block.items()}
            n = len(next(iter(block.values())))
            with torch.inference_mode():
                frames = self.generate_frames(networks, ref_t.expand(n, -1, -1, -1), tensors)
            yield to_uint8_frames(frames)

    def generate_frames(self, networks: Mapping[str, nn.Module], reference: torch.Tensor, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``reference (B, 3, S, S)`` in [-1, 1] + features ``(B, …)`` (MFCC/mel standardised) → ``(B, 3, S, S)`` in [-1, 1]."""
        raise NotImplementedError(f"{type(self).__name__} must define generate_frames() or generate_stream()")

    # ------------------------------------------------------------------------ report
    def facts(self, checkpoints: Sequence[dict]) -> list[tuple[str, str]]:
        """``(label, text)`` lines the report shows about the model, from its phases' checkpoints
        (default: its parsed ``model`` settings)."""
        model = checkpoints[-1]["identity"]["model"] if checkpoints else {}
        return [("model", ", ".join(f"{k}={v}" for k, v in model.items()))]

    def warnings(self, checkpoints: Sequence[dict]) -> list[str]:
        """Lines the report shows as warnings (e.g. a loss network that is not the paper's)."""
        return []

    def train_config(self) -> dict:
        """The parsed sections as plain containers."""
        out = {"model": self.model_dict(), "training": plain(asdict(self.training)), "phases": [p.to_dict() for p in self.phases]}
        if self.pretrained:
            out["pretrained"] = plain(self.pretrained)
        return out


# ---------------------------------------------------------------------------- helpers for recipes
def check_reference(reference: np.ndarray, size: int) -> np.ndarray:
    """``reference`` checked to be ``(size, size, 3)`` uint8.

    Raises:
        ValueError: another shape or dtype.
    """
    reference = np.asarray(reference)
    if reference.shape != (size, size, 3) or reference.dtype != np.uint8:
        raise ValueError(f"reference must be ({size}, {size}, 3) uint8, got {reference.shape} {reference.dtype}")
    return reference


def check_features(features: Mapping[str, np.ndarray], names: Sequence[str], shapes: Mapping[str, tuple] | None = None) -> dict[str, np.ndarray]:
    """The named per-frame feature arrays, checked: present, ``shapes[name]`` after the time axis when
    given, one common length >= 1.

    Raises:
        ValueError: naming the missing feature, the wrong shape, or the differing lengths.
    """
    arrays = {}
    for name in names:
        if name not in features:
            raise ValueError(f"features lack {name!r}; need {sorted(names)}")
        a = np.asarray(features[name])
        want = (shapes or {}).get(name)
        if want is not None and (a.ndim != len(want) + 1 or tuple(a.shape[1:]) != tuple(want)):
            raise ValueError(f"features[{name!r}] must have shape (T, {', '.join(map(str, want))}), got {a.shape}")
        arrays[name] = a
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"feature lengths differ: {lengths}")
    if not lengths or next(iter(lengths.values())) < 1:
        raise ValueError("features hold no frame")
    return arrays


def feature_blocks(feature_chunks: Iterable[Mapping[str, np.ndarray]], names: Sequence[str], size: int,
                   shapes: Mapping[str, tuple] | None = None) -> Iterator[dict[str, np.ndarray]]:
    """A stream of a clip's feature chunks re-cut into blocks of ``size`` frames counted from the
    clip's first frame (the last block holds the rest), each chunk checked by :func:`check_features`.

    Yields:
        dicts of the ``names``, each ``(size, …)`` but for the last (views when a chunk holds a
        whole block, copies when a block spans chunks).

    Raises (when iterated):
        ValueError: ``size < 1``; a chunk :func:`check_features` rejects (missing, mis-shaped or
            empty features, lengths that differ); no chunk at all.
    """
    if int(size) < 1:
        raise ValueError(f"batch must be >= 1 frame, got {size}")
    size, pending, seen = int(size), None, False
    for chunk in feature_chunks:
        arrays = check_features(chunk, names, shapes)
        seen = True
        pending = arrays if pending is None else {k: np.concatenate([pending[k], arrays[k]]) for k in names}
        while len(pending[names[0]]) >= size:
            yield {k: v[:size] for k, v in pending.items()}
            pending = {k: v[size:] for k, v in pending.items()}
    if not seen:
        raise ValueError("features hold no frame")
    if pending is not None and len(pending[names[0]]):
        yield pending


def to_image_tensor(image: np.ndarray) -> torch.Tensor:
    """``(S, S, 3)`` uint8 → ``(1, 3, S, S)`` float32 in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image)).float().div(127.5).sub(1.0).permute(2, 0, 1).unsqueeze(0)


def to_uint8_frames(frames: torch.Tensor) -> np.ndarray:
    """``(B, 3, S, S)`` in [-1, 1] → ``(B, S, S, 3)`` uint8 (CPU numpy)."""
    return frames.float().add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


__all__ = ["FrameTraining", "ModelSettings", "Recipe", "Step", "WeightedSumStep", "check_features", "check_reference",
           "feature_blocks", "to_image_tensor", "to_uint8_frames"]
