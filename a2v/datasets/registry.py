"""Adapter lookup by the ``adapter`` name a dataset declares in the config."""

from __future__ import annotations

from pathlib import Path

from a2v.datasets.grid import GridAdapter
from a2v.errors import ConfigError

ADAPTERS = {"grid": GridAdapter}


def make_adapter(name: str, root: str | Path, dataset: str):
    """An adapter instance for a corpus folder.

    Raises:
        ConfigError: unknown adapter name.
    """
    if name not in ADAPTERS:
        raise ConfigError(f"unknown dataset adapter {name!r}; known: {sorted(ADAPTERS)}")
    return ADAPTERS[name](root, dataset=dataset)
