"""What GAN recipes share: the ``training`` keys of an adversarial, perceptual-loss model.

Used by :mod:`a2v.recipes.man` and :mod:`a2v.recipes.oneshota2v` (the generic core never imports
it: it loads the loss networks' modules).
"""

from __future__ import annotations

from dataclasses import dataclass

from a2v.losses.adversarial import GAN_LOSSES
from a2v.losses.perceptual import PERCEPTUAL_KEYS
from a2v.models.vgg import BACKBONES
from a2v.recipes.base import FrameTraining


@dataclass
class GanTraining(FrameTraining):
    """:class:`~a2v.recipes.base.FrameTraining` plus the adversarial form and the perceptual VGG.

    Attributes:
        gan_loss: adversarial form of the adversarial terms (:data:`a2v.losses.adversarial.GAN_LOSSES`).
        perceptual: the VGG of the ``perceptual`` term (:mod:`a2v.models.vgg`; keys
            :data:`a2v.losses.perceptual.PERCEPTUAL_KEYS`); ``None`` = defaults.

    Raises:
        ValueError: an unknown adversarial form, perceptual key or backbone.
    """

    gan_loss: str = "original"
    perceptual: dict | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.gan_loss not in GAN_LOSSES:
            raise ValueError(f"training.gan_loss must be one of {GAN_LOSSES}, got {self.gan_loss!r}")
        self.perceptual = dict(self.perceptual or {})
        unknown = sorted(set(self.perceptual) - set(PERCEPTUAL_KEYS))
        if unknown:
            raise ValueError(f"training.perceptual: unknown keys {unknown}; known: {list(PERCEPTUAL_KEYS)}")
        backbone = self.perceptual.get("backbone", "vgg19_imagenet")
        if backbone not in BACKBONES:
            raise ValueError(f"training.perceptual.backbone must be one of {BACKBONES}, got {backbone!r}")
