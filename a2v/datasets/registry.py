"""Adapter lookup by the ``adapter`` name a dataset declares in the config."""

from __future__ import annotations

import inspect
from pathlib import Path

from a2v.datasets.cremad import CremaDAdapter
from a2v.datasets.folder import FolderAdapter
from a2v.datasets.grid import GridAdapter
from a2v.datasets.lombard import LombardGridAdapter
from a2v.datasets.voxceleb2 import VoxCeleb2Adapter
from a2v.errors import ConfigError

ADAPTERS = {
    "grid": GridAdapter,
    "lombard_grid": LombardGridAdapter,
    "crema_d": CremaDAdapter,
    "voxceleb2": VoxCeleb2Adapter,
    "folder": FolderAdapter,
}


def make_adapter(name: str, root: str | Path, dataset: str, **options):
    """An adapter instance for a corpus folder.

    Args:
        name: a key of :data:`ADAPTERS` (``datasets.<name>.adapter``).
        root: the corpus folder.
        dataset: the dataset's name in the config.
        **options: the adapter's keyword options (``datasets.<name>.options``), e.g.
            ``view="side"`` for ``lombard_grid``.

    Raises:
        ConfigError: unknown adapter name, an option the adapter does not take, or a bad value.
    """
    if name not in ADAPTERS:
        raise ConfigError(f"unknown dataset adapter {name!r}; known: {sorted(ADAPTERS)}")
    cls = ADAPTERS[name]
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "root", "dataset")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(f"dataset {dataset!r}: adapter {name!r} takes no option {unknown}; its options: {accepted}")
    return cls(root, dataset=dataset, **options)
