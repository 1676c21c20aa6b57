"""Parsing of the ``model``, ``training`` and ``phases`` sections of an a2v config (MAN training).

Every key, its type and default (unknown keys inside these sections raise ``ValueError``; other
top-level sections are ignored here)::

    model:                        # a2v.models.man.ManConfig
      image_size: int = 256       # S; 64 for CPU runs (shard crops are resized to it)
      base_channels: int = 64
      max_channels: int = 512
      channel_mults: list[int] | null = null   # one per resolution, seed → full
      seed_size: int = 4
      n_res_blocks: int = 8
      mfcc_shape: [int, int] = [20, 13]
      audio_channels: int = 128
      mel_dim: int = 256
      n_bins: int = 256
      motion: "flow" | "keypoints" = "flow"
      n_keypoints: int = 15
      heatmap_size: int = 96
      video_branch: "conv2d" | "partial_conv2d" | "conv2d_eca" = "conv2d_eca"
      audio_branch: "conv1d" | "lstm" = "lstm"
      video_hidden: int = 128
      audio_hidden: int = 64
      use_motion: bool = true
      use_mel: bool = true
      use_pitch: bool = true
      use_energy: bool = true
      flow_scale: float | null = null          # px per unit; null → image_size / 64
      spectral_affine: bool = false
      cam_shared_fc: bool = false
      predictor:                  # a2v.models.predictors.PredictorConfig
        base_channels: int = 32
        depth: int | null = null  # null → 4 (flow U-Net) / 3 (keypoint hourglass)
        mel_channels: int = 16
        n_prev: int = 5
      discriminator:              # a2v.models.discriminators.DiscriminatorConfig
        n_scales: int = 3
        base_channels: int = 64
        n_layers: int = 3
        max_channels: int = 512
        cam: bool = true
    training:                     # TrainingConfig
      batch_size: int = 8
      lr: float = 0.002           # G (+ predictor) and D, MAN §4.2
      betas: [float, float] = [0.0, 0.9]
      seed: int = 0
      checkpoint_every: int = 500 # steps between last.pt saves
      log_every: int = 10         # steps between losses.csv rows (step 1 and the last step too)
      num_workers: int = 0        # DataLoader workers
      reference: "random" | "first" = "random"
      cache: bool = true          # hold the training clips in memory
      gan_loss: "original" | "bce" | "hinge" | "lsgan" = "original"
      progress_interval: float = 30.0   # seconds between tqdm refreshes (stderr)
      precision: "auto" | "bf16" | "fp32" = "auto"   # auto: bf16 autocast on CUDA, float32 on CPU
      channels_last: bool | null = null        # null: on CUDA only
      perceptual:                 # the VGG of the ``perceptual`` loss (a2v.models.vgg)
        backbone: "vgg19_imagenet" | "vgg16_hed" = "vgg19_imagenet"
        weights: str | null = null          # .pth (VGG19, torchvision layout) / .weights.h5 (HED)
        download: bool = false               # vgg19_imagenet: fetch torchvision's file if not cached
        layers: list[str] = [relu1_1, relu2_1, relu3_1, relu4_1, relu5_1]
        layer_weights: list[float] | null = null   # one per layer; null → all 1 (Eq. 5)
    phases:                       # list, at least one; a2v.training.phases.parse_phase
      - name: str = "phase{i}"
        steps: int                # exactly one of steps (>= 1) and epochs (> 0)
        epochs: float             # passes over the training frames; steps = ceil(epochs·frames/batch)
        discriminator: bool = true
        motion_source: "ground_truth" | "predicted" = "ground_truth"
        detach_motion: bool = true
        losses:                   # weight >= 0; 0 skips the term
          adv: float = 1.0        # 0 when discriminator is false
          l1_lower: float = 10.0
          fm: float = 10.0        # 0 when discriminator is false
          perceptual: float = 0.0 # λ of MAN supp. Eq. 5 (needs training.perceptual weights)
          cam: float = 1.0        # 0 when discriminator is false
          flow_mse: float = 1.0   # motion "flow" only (0 when use_motion is false)
          keypoint_mse: float = 1.0   # motion "keypoints" only (0 when use_motion is false)
"""

from __future__ import annotations

from dataclasses import dataclass

from a2v.losses.adversarial import GAN_LOSSES
from a2v.losses.perceptual import PERCEPTUAL_KEYS
from a2v.models.vgg import BACKBONES
from a2v.models.discriminators import DiscriminatorConfig
from a2v.models.man import ManConfig
from a2v.models.predictors import PredictorConfig
from a2v.training.data import REFERENCES
from a2v.training.phases import Phase, parse_phases
from a2v.settings import dataclass_from_dict


PRECISIONS = ("auto", "bf16", "fp32")
"""``training.precision``: auto = bf16 autocast on CUDA, float32 on the CPU."""


@dataclass
class TrainingConfig:
    """The ``training`` section (see the module docstring)."""

    batch_size: int = 8
    lr: float = 0.002
    betas: tuple[float, float] = (0.0, 0.9)
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 10
    num_workers: int = 0
    reference: str = "random"
    cache: bool = True
    gan_loss: str = "original"
    progress_interval: float = 30.0
    perceptual: dict | None = None
    precision: str = "auto"
    channels_last: bool | None = None

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"training.precision must be one of {PRECISIONS}, got {self.precision!r}")
        self.perceptual = dict(self.perceptual or {})
        unknown = sorted(set(self.perceptual) - set(PERCEPTUAL_KEYS))
        if unknown:
            raise ValueError(f"training.perceptual: unknown keys {unknown}; known: {list(PERCEPTUAL_KEYS)}")
        backbone = self.perceptual.get("backbone", "vgg19_imagenet")
        if backbone not in BACKBONES:
            raise ValueError(f"training.perceptual.backbone must be one of {BACKBONES}, got {backbone!r}")
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
        if self.reference not in REFERENCES:
            raise ValueError(f"training.reference must be one of {REFERENCES}, got {self.reference!r}")
        if self.gan_loss not in GAN_LOSSES:
            raise ValueError(f"training.gan_loss must be one of {GAN_LOSSES}, got {self.gan_loss!r}")

    @classmethod
    def from_dict(cls, d: dict | None) -> "TrainingConfig":
        """Build from a dict; unknown keys raise ``ValueError``."""
        return dataclass_from_dict(cls, d, "training")


@dataclass
class ParsedConfig:
    """Everything :func:`a2v.training.loop.train_phase` reads from a config dict."""

    model: ManConfig
    predictor: PredictorConfig
    discriminator: DiscriminatorConfig
    training: TrainingConfig
    phases: list[Phase]


def parse_model(model: dict | None) -> tuple[ManConfig, PredictorConfig, DiscriminatorConfig]:
    """Split the ``model`` section into generator, predictor and discriminator configs."""
    model = dict(model or {})
    pred = PredictorConfig.from_dict(model.pop("predictor", None))
    disc = DiscriminatorConfig.from_dict(model.pop("discriminator", None))
    return ManConfig.from_dict(model), pred, disc


def parse_config(config: dict) -> ParsedConfig:
    """Validate and parse the ``model``, ``training`` and ``phases`` sections.

    Raises:
        ValueError: unknown keys or invalid values (the message names them).
    """
    man, pred, disc = parse_model(config.get("model"))
    training = TrainingConfig.from_dict(config.get("training"))
    phases = parse_phases(list(config.get("phases") or []), man.motion, man.use_motion)
    return ParsedConfig(man, pred, disc, training, phases)
