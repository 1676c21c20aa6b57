"""Shared fixtures: the embedded GRID sample (real clips, CC BY 4.0 — see resources/grid_sample)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

warnings.filterwarnings("ignore", message="pkg_resources is deprecated")

REPO = Path(__file__).resolve().parents[1]
GRID_SAMPLE = REPO / "resources" / "grid_sample"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def grid_sample() -> Path:
    return GRID_SAMPLE


@pytest.fixture(scope="session")
def s1_clip() -> Path:
    """A real GRID clip of speaker s1 ("bin green by n eight now")."""
    return GRID_SAMPLE / "s1" / "bgbn8n.mpg"
