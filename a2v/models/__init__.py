"""a2v.models — networks, one module per kind: MAN generator (``man``, ``blocks``,
``partial_conv``), motion predictors (``predictors``), discriminators (``discriminators``),
perceptual VGG (``vgg``), and the judges' networks (``lipreader``, ``syncnet``).

Names are imported on first use (PEP 562), so importing one network's module does not import the
others: the judges and the generic training core stay free of MAN's code.
"""

import importlib

_EXPORTS = {
    "AudioAffine1D": "blocks", "CAMLayer": "blocks", "MANBlock": "blocks", "MANResBlock": "blocks",
    "ModalitySpec": "blocks", "VideoAffine2D": "blocks", "sn_conv2d": "blocks",
    "DiscriminatorConfig": "discriminators", "MultiScalePatchGAN": "discriminators", "PatchDiscriminator": "discriminators",
    "ManConfig": "man", "ManGenerator": "man", "count_parameters": "man",
    "FlowPredictor": "predictors", "KeypointPredictor": "predictors", "PredictorConfig": "predictors",
    "build_predictor": "predictors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"a2v.models.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'a2v.models' has no attribute {name!r}")
