"""Model recipes: ``model_type`` → the class that owns everything of one model.

Built in: ``man`` (:mod:`a2v.recipes.man`), ``oneshota2v`` (:mod:`a2v.recipes.oneshota2v`), ``cran`` (:mod:`a2v.recipes.cran`), ``sdgan``
(:mod:`a2v.recipes.sdgan`). A ``model_type`` may also be a dotted path
``package.module:Class`` (stylegan2-ada's ``class_name`` idea): a recipe outside a2v, importable
from ``PYTHONPATH``, plugs in without editing a2v. The interface: :class:`a2v.recipes.base.Recipe`.
"""

from __future__ import annotations

import importlib

from a2v.recipes.base import Recipe, Step, WeightedSumStep

RECIPES = {
    "man": "a2v.recipes.man:ManRecipe",
    "oneshota2v": "a2v.recipes.oneshota2v:OneShotA2VRecipe",
    "cran": "a2v.recipes.cran:CranRecipe",
    "sdgan": "a2v.recipes.sdgan:SdganRecipe",
}
"""Built-in recipes by ``model_type`` (imported on first use)."""


def get_recipe(model_type: str) -> type[Recipe]:
    """The recipe class of a ``model_type``: a key of :data:`RECIPES` or ``package.module:Class``.

    Raises:
        ValueError: unknown name, a module that cannot be imported, no such class, or a class that
            is not a :class:`Recipe`.
    """
    path = RECIPES.get(model_type, model_type)
    if ":" not in path:
        raise ValueError(f"unknown model_type {model_type!r}; built in: {sorted(RECIPES)}, or give 'package.module:Class'")
    module_name, _, cls_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"model_type {model_type!r}: cannot import {module_name!r} ({exc}); is it on PYTHONPATH?") from exc
    cls = getattr(module, cls_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Recipe)):
        raise ValueError(f"model_type {model_type!r}: {module_name}.{cls_name} is not an a2v.recipes.Recipe subclass")
    return cls


def make_recipe(model_type: str, model: dict | None = None, training: dict | None = None, phases=(),
                pretrained: dict | None = None) -> Recipe:
    """``get_recipe(model_type)(model, training, phases, pretrained)``, its ``name`` set to ``model_type``
    (the name its checkpoints carry).

    Raises:
        ValueError: unknown model type, or sections its recipe rejects.
    """
    cls = get_recipe(model_type)
    recipe = cls(model, training, phases, pretrained) if pretrained else cls(model, training, phases)
    recipe.name = model_type
    return recipe


__all__ = ["RECIPES", "Recipe", "Step", "WeightedSumStep", "get_recipe", "make_recipe"]
