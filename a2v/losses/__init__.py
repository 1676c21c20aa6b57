"""a2v.losses — one module per loss concept. A model recipe composes them into its named, weighted
terms (e.g. :mod:`a2v.recipes.man.losses`)."""

from a2v.losses.adversarial import GAN_LOSSES, d_adversarial, g_adversarial
from a2v.losses.cam import d_cam, g_cam
from a2v.losses.feature_matching import feature_matching
from a2v.losses.perceptual import PerceptualLoss, build_perceptual
from a2v.losses.predictor import flow_mse, heatmap_mse
from a2v.losses.reconstruction import lower_half_l1

__all__ = [
    "GAN_LOSSES",
    "PerceptualLoss",
    "d_adversarial",
    "d_cam",
    "build_perceptual",
    "feature_matching",
    "flow_mse",
    "g_adversarial",
    "g_cam",
    "heatmap_mse",
    "lower_half_l1",
]
