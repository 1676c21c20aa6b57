"""The MAN recipe — Kumar et al., *Multi Modal Adaptive Normalization for Audio to Video Generation*.

Networks (``build()``): ``generator`` (:class:`a2v.models.man.ManGenerator`), ``predictor``
(flow U-Net or keypoint hourglass, :mod:`a2v.models.predictors`), ``discriminator`` (3-scale
PatchGAN with CAM logits, :mod:`a2v.models.discriminators`). Optimisers: ``g`` (Adam over
generator + predictor) and ``d`` (Adam over the discriminator), lr 0.002, β (0, 0.9) (MAN §4.2).
Training windows: one frame t per sample with the 5 previous frames, flow (or heatmaps), MFCC,
mel, F0 and energy bins (:class:`a2v.training.data.FrameDataset`); with ``training.sequence_length``
L > 1, L consecutive such frames of one clip with one reference (:class:`a2v.training.data.FrameWindows`),
which the lip-sync expert term ``sync`` needs (L >= 5; a2v, Wav2Lip §3.2: MAN has no sync loss).
Step: :mod:`.step`; inference (autoregressive): :mod:`.inference`; loss terms: :mod:`.losses`.

Config keys (every one checked here; unknown keys raise ``ValueError``)::

    model:                        # a2v.models.man.ManConfig (image_size=256, base_channels=64,
                                  #   motion=flow|keypoints, video_branch, audio_branch, use_*…)
      predictor: {...}            # a2v.models.predictors.PredictorConfig (n_prev=5…)
      discriminator: {...}        # a2v.models.discriminators.DiscriminatorConfig
    training:                     # ManTraining: the runner's keys (a2v.training.settings) +
      reference: random|first     #   how references are drawn, clip cache,
      sequence_length: 1          #   frames per sample (>= 5 for the sync term; batch_size counts samples)
      gan_loss: original|bce|hinge|lsgan
      perceptual: {backbone: vgg19_imagenet|vgg16_hed, weights, download, layers, layer_weights}
    phases:
      - losses: {adv: 1, l1_lower: 10, fm: 10, perceptual: 0, cam: 1, flow_mse | keypoint_mse: 1, sync: 0}
        discriminators: [frame]   # default: on; adv/fm/cam default to 0 without it
        motion_source: ground_truth | predicted      # default ground_truth
        detach_motion: true

Motion source (a2v's choice): ``ground_truth`` is teacher forcing — the generator's motion input
is the shard's Farnebäck flow (or heatmaps) of frame t, the predictor still trains on its MSE if
weighted; ``predicted`` — the generator sees the predictor's output from the previous 5 real
frames and mel[t], as at inference. With ``detach_motion: true`` (default) the prediction is
detached, so the predictor learns only from its MSE against Farnebäck flow / heatmaps (MAN §3.0.1:
"optimized with mean square loss"); with ``false`` the generator's losses also reach it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from a2v.losses.perceptual import build_perceptual
from a2v.losses.sync_expert import SYNC_EXPERT, SYNC_EXPERT_TRAINER, SYNC_FRAMES, SYNC_TERM, load_sync_expert
from a2v.models.discriminators import DiscriminatorConfig, MultiScalePatchGAN
from a2v.models.man import ManConfig, ManGenerator
from a2v.models.predictors import PredictorConfig, build_predictor
from a2v.recipes.base import Recipe
from a2v.recipes.gan import GanTraining
from a2v.recipes.man.inference import FEATURES, synthesize_stream
from a2v.recipes.man.losses import LOSS_KEYS
from a2v.recipes.man.step import ManStep
from a2v.training.data import FrameWindows, count_frames
from a2v.training.phases import Phase

MOTION_SOURCES = ("ground_truth", "predicted")
MODEL_FACTS = ("image_size", "motion", "video_branch", "audio_branch", "use_motion", "use_mel", "use_pitch", "use_energy")
"""``model`` keys the report shows."""


@dataclass
class ManModel:
    """The ``model`` section: generator settings with ``predictor`` and ``discriminator`` inside."""

    generator: ManConfig
    predictor: PredictorConfig
    discriminator: DiscriminatorConfig

    @property
    def image_size(self) -> int:
        return self.generator.image_size

    def to_dict(self) -> dict:
        return {**self.generator.to_dict(), "predictor": vars(self.predictor), "discriminator": vars(self.discriminator)}


@dataclass
class ManTraining(GanTraining):
    """MAN's ``training`` keys beyond the runner's: ``gan_loss`` (of ``adv`` and ``cam``),
    ``perceptual`` and ``sequence_length``.

    Attributes:
        sequence_length: consecutive frames per sample (1: single frames, MAN's own training;
            >= 5 for the lip-sync expert); ``batch_size`` counts samples, so a step sees
            ``batch_size · sequence_length`` frames.

    Raises:
        ValueError: ``sequence_length`` < 1, or :class:`GanTraining`'s errors.
    """

    sequence_length: int = 1

    def __post_init__(self):
        super().__post_init__()
        if int(self.sequence_length) < 1:
            raise ValueError(f"training.sequence_length must be >= 1, got {self.sequence_length}")


class ManRecipe(Recipe):
    """MAN-optical / MAN-keypoint and the Table 2–3 variants (see the module docstring)."""

    Training = ManTraining
    loss_keys = LOSS_KEYS
    discriminators = ("frame",)
    phase_options = {"motion_source": "ground_truth", "detach_motion": True}
    pretrained_networks = dict(SYNC_EXPERT_TRAINER)
    generation_features = FEATURES
    values_title = "MAN modality weights ρ (first MAN block) over training"

    def parse_model(self, model: dict | None) -> ManModel:
        model = dict(model or {})
        pred = PredictorConfig.from_dict(model.pop("predictor", None))
        disc = DiscriminatorConfig.from_dict(model.pop("discriminator", None))
        return ManModel(ManConfig.from_dict(model), pred, disc)

    @property
    def n_prev(self) -> int:
        return self.model.predictor.n_prev

    @property
    def frame_features(self) -> tuple[str, ...]:
        motion = "flow" if self.model.generator.motion == "flow" else "heatmaps"
        return (motion, "mfcc", "mel", "f0_bin", "energy_bin")

    def _own_mse(self) -> tuple[str, str]:
        return ("flow_mse", "keypoint_mse") if self.model.generator.motion == "flow" else ("keypoint_mse", "flow_mse")

    def default_losses(self, discriminators: tuple[str, ...]) -> dict[str, float]:
        """``adv`` 1, ``l1_lower`` 10, ``fm`` 10, ``cam`` 1 (``adv``/``fm``/``cam`` 0 without the
        frame discriminator), ``perceptual`` 0 (it needs VGG weights), the model's predictor MSE 1
        (0 with ``use_motion: false``)."""
        d = 1.0 if "frame" in discriminators else 0.0
        own, _ = self._own_mse()
        return {"adv": d, "l1_lower": 10.0, "fm": 10.0 * d, "cam": d, own: 1.0 if self.model.generator.use_motion else 0.0}

    def check_phase(self, phase: Phase, index: int) -> None:
        """Raises ``ValueError``: adversarial terms without the discriminator, the other motion kind's
        predictor MSE, a predictor MSE without motion, an unknown motion source."""
        w = phase.losses
        if "frame" not in phase.discriminators:
            bad = [k for k in ("adv", "fm", "cam") if w[k] > 0]
            if bad:
                raise ValueError(f"phase {index}: {bad} need the discriminator, which this phase turns off")
        own, other = self._own_mse()
        if w[other] > 0:
            raise ValueError(f"phase {index}: {other!r} is weighted but the model's motion is {self.model.generator.motion!r}")
        if not self.model.generator.use_motion and w[own] > 0:
            raise ValueError(f"phase {index}: {own!r} is weighted but the model has use_motion: false (no predictor is used)")
        if w.get(SYNC_TERM, 0) > 0 and int(self.training.sequence_length) < SYNC_FRAMES:
            raise ValueError(f"phase {index}: the sync expert needs training.sequence_length >= {SYNC_FRAMES}, "
                             f"got {self.training.sequence_length}")
        if phase.options["motion_source"] not in MOTION_SOURCES:
            raise ValueError(f"phase {index}: motion_source must be one of {MOTION_SOURCES}, got {phase.options['motion_source']!r}")

    def build(self) -> dict[str, nn.Module]:
        m = self.model
        return {"generator": ManGenerator(m.generator), "predictor": build_predictor(m.generator, m.predictor),
                "discriminator": MultiScalePatchGAN.from_config(m.discriminator)}

    def optimizers(self, networks: Mapping[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        t = self.training
        g_params = list(networks["generator"].parameters()) + list(networks["predictor"].parameters())
        return {"g": torch.optim.Adam(g_params, lr=t.lr, betas=t.betas),
                "d": torch.optim.Adam(networks["discriminator"].parameters(), lr=t.lr, betas=t.betas)}

    def n_samples(self, clips: Sequence[tuple[str, str]]) -> int:
        """Frames / L: an epoch shows every frame about once."""
        return max(1, count_frames(clips) // int(self.training.sequence_length))

    def dataset(self, clips: Sequence[tuple[str, str]], state: dict) -> torch.utils.data.Dataset:
        """Per-frame samples, or windows of ``training.sequence_length`` frames when it is > 1."""
        frames = super().dataset(clips, state)
        return frames if int(self.training.sequence_length) == 1 else FrameWindows(frames, self.training.sequence_length)

    def trainer(self, networks, optimizers, phase: Phase, device: torch.device, emit) -> ManStep:
        perceptual = None
        if phase.losses.get("perceptual", 0.0) > 0:
            perceptual = build_perceptual(self.training.perceptual).to(device)
            emit(f"[{phase.name}] perceptual loss backbone {perceptual.info.describe()}, layers {', '.join(perceptual.vgg.layer_names)}")
            if perceptual.info.backbone != "vgg19_imagenet":
                emit(f"[{phase.name}] WARNING: perceptual features are not the paper's ImageNet VGG19 ({perceptual.info.description})")
        expert, info = None, {}
        if phase.losses.get(SYNC_TERM, 0) > 0:
            expert, info = load_sync_expert(self.pretrained_paths[SYNC_EXPERT], device, emit, f"[{phase.name}] ")
        t = self.training
        step = ManStep(networks, optimizers, self.model.generator, phase, t.gan_loss, device, perceptual, t.precision,
                       t.channels_last, expert)
        step.info = {**step.info, **info}
        return step

    def log_values(self, networks: Mapping[str, nn.Module]) -> dict[str, float]:
        """ρ of the first MAN block, per modality (``rho_<modality>``)."""
        G = networks["generator"]
        return {f"rho_{n}": r for n, r in zip(G.modality_names, G.rho().tolist())}

    def generate_stream(self, networks, state: dict, reference: np.ndarray, feature_chunks: Iterable[Mapping[str, np.ndarray]],
                        device: torch.device | str = "cpu", batch: int = 1) -> Iterator[np.ndarray]:
        """Autoregressive generation from chunks of features, blocks of frames out
        (:func:`a2v.recipes.man.inference.synthesize_stream`; ``batch`` > 1 approximates)."""
        return synthesize_stream(self.model.generator, networks, self.normalizer(state), reference, feature_chunks,
                                 self.n_prev, device, batch)

    def facts(self, checkpoints: Sequence[dict]) -> list[tuple[str, str]]:
        model = checkpoints[-1]["identity"]["model"]
        backbones = sorted({b for c in checkpoints if (b := (c.get("info") or {}).get("perceptual_backbone"))})
        return [("model", ", ".join(f"{k}={model[k]}" for k in MODEL_FACTS if k in model)),
                ("perceptual loss", "; ".join(backbones) or "not used")]

    def warnings(self, checkpoints: Sequence[dict]) -> list[str]:
        """The perceptual backbone, when it is not the paper's ImageNet VGG19."""
        backbones = {(c.get("info") or {}).get("perceptual_backbone") for c in checkpoints}
        return [f"Perceptual features: {b}" for b in sorted(b for b in backbones if b and "NOT the paper" in b)]
