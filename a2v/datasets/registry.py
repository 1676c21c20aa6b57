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


LIPREADER_VOCABULARY = "grid"
"""The vocabulary of a2v's lip-reader (:mod:`a2v.judges.lipreader`): trained on GRID words cut at
their alignment times and decoded through GRID's sentence grammar."""


def lipreader_reason(dataset: str, dataset_config: dict) -> str | None:
    """Why a lip-reader cannot judge WER on a dataset, or ``None`` when it can.

    **a2v:** a lip-reader is used only on a corpus of the vocabulary it was trained on (the
    adapter's :attr:`~a2v.datasets.base.CorpusAdapter.vocabulary`): read through GRID's grammar, a
    CREMA-D or VoxCeleb2 clip would come out as a GRID sentence, and its WER would measure nothing.
    LSE-C/D (SyncNet) needs no transcript and is used on every corpus.

    Args:
        dataset: the dataset's name in the config.
        dataset_config: its ``datasets.<name>`` section (``adapter`` defaults to ``grid``).

    Raises:
        ConfigError: unknown adapter name.
    """
    name = dataset_config["adapter"]
    if name not in ADAPTERS:
        raise ConfigError(f"unknown dataset adapter {name!r}; known: {sorted(ADAPTERS)}")
    vocabulary = ADAPTERS[name].vocabulary
    if vocabulary == LIPREADER_VOCABULARY:
        return None
    spoken = f"the {vocabulary!r} sentences" if vocabulary else "an open vocabulary or no transcripts"
    return (f"dataset {dataset!r} (adapter {name!r}) has {spoken}; the lip-reader reads GRID's "
            f"vocabulary only, so WER is NA (LSE-C/D needs no transcript and stays)")
