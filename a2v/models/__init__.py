"""a2v.models — MAN generator, motion predictors, discriminators and their building blocks."""

from a2v.models.blocks import AudioAffine1D, CAMLayer, MANBlock, MANResBlock, ModalitySpec, VideoAffine2D, sn_conv2d
from a2v.models.discriminators import DiscriminatorConfig, MultiScalePatchGAN, PatchDiscriminator
from a2v.models.man import ManConfig, ManGenerator, count_parameters
from a2v.models.predictors import FlowPredictor, KeypointPredictor, PredictorConfig, build_predictor

__all__ = [
    "AudioAffine1D",
    "CAMLayer",
    "DiscriminatorConfig",
    "FlowPredictor",
    "KeypointPredictor",
    "MANBlock",
    "MANResBlock",
    "ManConfig",
    "ManGenerator",
    "ModalitySpec",
    "MultiScalePatchGAN",
    "PatchDiscriminator",
    "PredictorConfig",
    "VideoAffine2D",
    "build_predictor",
    "count_parameters",
    "sn_conv2d",
]
