"""Building the settings dataclasses (model, predictor, discriminator, training) from config dicts."""

from __future__ import annotations

from dataclasses import fields
from typing import TypeVar

T = TypeVar("T")


def dataclass_from_dict(cls: type[T], d: dict | None, section: str) -> T:
    """``cls(**d)`` after checking every key is a field of ``cls``.

    Args:
        cls: a dataclass.
        d: its settings (``None`` = all defaults).
        section: the config section's name, for the message (e.g. ``model.predictor``).

    Raises:
        ValueError: unknown keys, naming them, the section and the known keys.
    """
    d = dict(d or {})
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"unknown {section} keys {unknown}; known: {sorted(known)}")
    return cls(**d)
