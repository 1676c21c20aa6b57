"""Any trained model as a frame generator: a checkpoint knows its recipe.

:func:`load_generator` rebuilds the recipe (``checkpoint["recipe"]``, a ``model_type``) from the
settings stored in the checkpoint, loads its networks by name and returns a :class:`Generator`;
``a2v generate`` and the ``generate_test`` stage use it for every model alike.

a2v: the networks' 4-D weights are stored channels-last (NHWC, :func:`inference_layout`): oneDNN's
convolutions run faster on it (measured on a 2-core CPU at 128², untrained CPU presets:
OneShotA2V 4.9 → 7.8 frames/s, MAN 7.6 → 8.3, CRAN 204 → 266; SDGAN unchanged). The values are
the same up to float rounding (a different summation order).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from a2v.recipes import Recipe, make_recipe
from a2v.training.checkpoint import load_checkpoint


@dataclass
class Generator:
    """A trained model ready to generate.

    Attributes:
        recipe: the model's recipe, rebuilt from the checkpoint's settings.
        networks: its networks, weights loaded, eval mode.
        state: the checkpoint's data state (e.g. the feature normaliser).
        config: the settings the checkpoint was trained with (``preprocess``, ``experiment``…).
        phase_name, step: where the checkpoint was taken.
    """

    recipe: Recipe
    networks: dict[str, nn.Module]
    state: dict
    config: dict
    phase_name: str
    step: int

    @property
    def image_size(self) -> int:
        """S of the frames, pixels (references must be aligned crops of this size)."""
        return self.recipe.image_size

    @property
    def feature_keys(self) -> tuple[str, ...]:
        """The per-frame shard features :meth:`generate` reads."""
        return tuple(self.recipe.generation_features)

    def generate(self, reference: np.ndarray, features: Mapping[str, np.ndarray], device: torch.device | str = "cpu", **options) -> np.ndarray:
        """``(S, S, 3)`` uint8 reference + raw per-frame features ``(T, …)`` → ``(T, S, S, 3)`` uint8
        frames (:meth:`a2v.recipes.base.Recipe.generate`; ``options`` are the recipe's, e.g. ``batch``).

        Raises:
            ValueError: wrong reference, missing or mismatched features.
        """
        return self.recipe.generate(self.networks, self.state, reference, features, device, **options)

    def generate_stream(self, reference: np.ndarray, feature_chunks: Iterable[Mapping[str, np.ndarray]],
                        device: torch.device | str = "cpu", **options) -> Iterator[np.ndarray]:
        """``(S, S, 3)`` uint8 reference + consecutive chunks of raw per-frame features ``(n, …)`` →
        blocks of ``(n, S, S, 3)`` uint8 frames, the model's state carried across chunks
        (:meth:`a2v.recipes.base.Recipe.generate_stream`: the blocks concatenated equal
        :meth:`generate` on the whole clip).

        Raises (when iterated):
            ValueError: wrong reference, missing or mismatched features.
        """
        return self.recipe.generate_stream(self.networks, self.state, reference, feature_chunks, device, **options)

    def finetune(self, reference: np.ndarray, steps: int, device: torch.device | str = "cpu", log=None) -> dict[str, float]:
        """One-shot fine-tuning on ``reference`` before generating (the recipe's
        :meth:`~a2v.recipes.base.Recipe.finetune`, e.g. OneShotA2V §5); returns its facts.

        Raises:
            NotImplementedError: the model has no one-shot fine-tuning.
        """
        return self.recipe.finetune(self.networks, self.state, reference, steps, device, log, preprocess=self.config.get("preprocess"))


def inference_layout(net: nn.Module, device: torch.device | str) -> nn.Module:
    """``net`` on ``device``, in eval mode, its 4-D parameters and buffers channels-last (in place;
    returned for chaining). The layout changes no value, only the summation order of convolutions."""
    return net.to(device).eval().to(memory_format=torch.channels_last)


def load_generator(checkpoint_path: str | Path, device: torch.device | str = "cpu") -> Generator:
    """Load a phase's ``checkpoint.pt`` (or ``last.pt``) as a :class:`Generator` on ``device``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not an a2v model checkpoint, or its recipe cannot be rebuilt.
    """
    state = load_checkpoint(checkpoint_path, map_location="cpu")
    config = state.get("config") or {}
    if "model_type" not in config:
        raise ValueError(f"{checkpoint_path}: a {state.get('recipe')!r} checkpoint, not a generator's")
    recipe = make_recipe(config["model_type"], config.get("model"), config.get("training"), config.get("phases") or [])
    device = torch.device(device)
    networks = recipe.build()
    for name, net in networks.items():
        if name not in state["networks"]:
            raise ValueError(f"{checkpoint_path}: no weights for network {name!r}")
        net.load_state_dict(state["networks"][name])
        networks[name] = inference_layout(net, device)
    return Generator(recipe, networks, state.get("state") or {}, config, str(state.get("phase_name", "")), int(state.get("step", 0)))
