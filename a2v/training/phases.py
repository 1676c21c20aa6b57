"""The phase vocabulary every model shares: a curriculum is a list of phases, each with a length,
loss weights and the discriminators it turns on.

A phase entry of the config::

    - name: adversarial          # label of logs and checkpoints (default "phase{i}")
      steps: 200                 # exactly one of steps (>= 1) and epochs (> 0);
      epochs: 9                  #   epochs: steps = ceil(epochs · training samples / batch_size)
      losses: {adv: 1, l1: 10}   # weight per named loss term of the recipe; 0 skips the term
      discriminators: [frame]    # the recipe's discriminators this phase trains and uses
      <key>: <value>             # a recipe's own phase keys (e.g. MAN's motion_source)

The recipe (:class:`a2v.recipes.base.Recipe`) says which loss names, discriminators and extra keys
exist, their defaults, and checks the combinations. A phase changes what is switched on, never the
networks: phase ``k + 1`` starts from phase ``k``'s checkpoint, network by network.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

PHASE_KEYS = ("name", "steps", "epochs", "losses", "discriminators")
"""Keys every phase understands; a recipe adds its own (:attr:`Recipe.phase_options`)."""


@dataclass(frozen=True)
class Phase:
    """One curriculum phase.

    Attributes:
        name: label (logs, checkpoints).
        steps: optimisation steps; ``None`` until an ``epochs`` phase is :meth:`resolved`.
        epochs: length in passes over the training samples, or ``None`` when ``steps`` is given.
        losses: loss name → weight (every loss name of the recipe present; 0 = off).
        discriminators: names of the discriminators on in this phase (a tuple, the recipe's order).
        options: the recipe's own phase keys with defaults filled in.
    """

    name: str
    steps: int | None
    epochs: float | None = None
    losses: dict = field(default_factory=dict)
    discriminators: tuple[str, ...] = ()
    options: dict = field(default_factory=dict)

    def resolved(self, n_samples: int, batch_size: int) -> "Phase":
        """This phase with ``steps = ceil(epochs · n_samples / batch_size)`` (unchanged if ``steps`` is set).

        Raises:
            ValueError: ``n_samples`` or ``batch_size`` < 1.
        """
        if self.steps is not None:
            return self
        if n_samples < 1 or batch_size < 1:
            raise ValueError(f"phase {self.name!r}: cannot resolve epochs with {n_samples} samples, batch {batch_size}")
        return replace(self, steps=max(1, math.ceil(self.epochs * n_samples / batch_size)))

    def active(self) -> dict[str, float]:
        """The weighted terms (weight > 0), in the recipe's order."""
        return {k: v for k, v in self.losses.items() if v > 0}

    def to_dict(self) -> dict:
        """Plain dict (for checkpoints and logs)."""
        return {"name": self.name, "steps": self.steps, "epochs": self.epochs, "losses": dict(self.losses),
                "discriminators": list(self.discriminators), **self.options}


def check_weights(weights: Mapping[str, float], loss_keys: Sequence[str], where: str = "losses") -> dict[str, float]:
    """Validate a weight mapping: known names, finite numbers >= 0. Returns a float dict.

    Raises:
        ValueError: an unknown name (listing the known ones) or a bad weight.
    """
    unknown = sorted(set(weights) - set(loss_keys))
    if unknown:
        raise ValueError(f"{where}: unknown loss weights {unknown}; this model's losses: {', '.join(loss_keys) or 'none'}")
    out = {}
    for k, v in weights.items():
        v = float(v)
        if not v >= 0.0 or v == math.inf:
            raise ValueError(f"{where}: loss weight {k!r} must be a finite number >= 0, got {v}")
        out[k] = v
    return out


def parse_phase(
    d: Mapping,
    index: int,
    loss_keys: Sequence[str],
    discriminators: Sequence[str],
    options: Mapping[str, object],
    default_losses: Callable[[tuple[str, ...]], Mapping[str, float]],
) -> Phase:
    """Validate one ``phases[i]`` entry against a recipe's vocabulary and fill in defaults.

    Args:
        d: the entry.
        index: its position (for messages and the default name).
        loss_keys: the recipe's loss names.
        discriminators: the recipe's discriminator names; a phase without ``discriminators``
            turns all of them on.
        options: the recipe's own phase keys → defaults.
        default_losses: discriminators on → default weights (missing names weigh 0).

    Raises:
        ValueError: unknown keys, neither or both of steps/epochs, a non-positive length, an
            unknown loss or discriminator name.
    """
    where = f"phase {index}"
    known = list(PHASE_KEYS) + list(options)
    unknown = sorted(set(d) - set(known))
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; known: {known}")
    if ("steps" in d) == ("epochs" in d):
        raise ValueError(f"{where}: give exactly one of 'steps' and 'epochs'")
    steps, epochs = None, None
    if "steps" in d:
        steps = int(d["steps"])
        if steps < 1:
            raise ValueError(f"{where}: steps must be >= 1, got {steps}")
    else:
        epochs = float(d["epochs"])
        if not 0 < epochs < math.inf:
            raise ValueError(f"{where}: epochs must be a positive number, got {d['epochs']}")
    on = d.get("discriminators", list(discriminators))
    if isinstance(on, str) or not isinstance(on, Sequence):
        raise ValueError(f"{where}: discriminators must be a list of names, got {on!r}")
    bad = sorted(set(on) - set(discriminators))
    if bad:
        raise ValueError(f"{where}: unknown discriminators {bad}; this model's: {list(discriminators) or 'none'}")
    on = tuple(n for n in discriminators if n in on)
    weights = {k: 0.0 for k in loss_keys}
    weights.update(check_weights(default_losses(on), loss_keys, where))
    weights.update(check_weights(d.get("losses") or {}, loss_keys, where))
    return Phase(
        name=str(d.get("name", f"phase{index}")),
        steps=steps,
        epochs=epochs,
        losses=weights,
        discriminators=on,
        options={k: d.get(k, v) for k, v in options.items()},
    )


def parse_phases(entries: Sequence[Mapping], **vocabulary) -> list[Phase]:
    """Validate the ``phases`` list (at least one entry, unique names); ``vocabulary`` as for :func:`parse_phase`.

    Raises:
        ValueError: see :func:`parse_phase`; no phase; duplicate names.
    """
    if not entries:
        raise ValueError("config 'phases' must list at least one phase")
    out = [parse_phase(p, i, **vocabulary) for i, p in enumerate(entries)]
    names = [p.name for p in out]
    if len(set(names)) != len(names):
        raise ValueError(f"phase names must be unique, got {names}")
    return out
