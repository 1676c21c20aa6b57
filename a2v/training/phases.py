"""Curriculum phases: which losses are on, with which weights, whether the discriminator trains, and
where the generator's motion input comes from.

A phase switches terms and discriminators on — nothing else (the model is the same in every phase;
phase ``k + 1`` starts from phase ``k``'s checkpoint).

Motion source (a2v's choice, documented):

* ``"ground_truth"`` — teacher forcing: the generator's motion input is the shard's Farnebäck
  flow (or heatmaps) of frame t. The predictor still trains on its MSE if weighted.
* ``"predicted"`` — the generator sees the predictor's output from the previous 5 real frames
  and mel[t], as at inference. With ``detach_motion: true`` (default) the prediction is
  detached, so the predictor learns only from its MSE against Farnebäck flow / heatmaps (MAN
  §3.0.1: "optimized with mean square loss") and keeps the meaning of flow; with ``false`` the
  generator's losses also reach the predictor (end-to-end).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from a2v.losses.composite import LOSS_KEYS, check_weights

MOTION_SOURCES = ("ground_truth", "predicted")
PHASE_KEYS = ("name", "steps", "epochs", "losses", "discriminator", "motion_source", "detach_motion")

DEFAULT_WEIGHTS = {"adv": 1.0, "l1_lower": 10.0, "fm": 10.0, "cam": 1.0}
"""Default weights of the generator terms (predictor MSE default: 1.0 for the model's motion kind
when the model uses motion; ``perceptual`` default 0: it needs VGG weights, see
:mod:`a2v.models.vgg`)."""


@dataclass(frozen=True)
class Phase:
    """One curriculum phase.

    Attributes:
        name: label (used in logs and checkpoints).
        steps: optimisation steps (generator updates) of this phase; ``None`` until an
            ``epochs`` phase is :meth:`resolved` against its training set.
        epochs: length in passes over the training frames (MAN supp. §3: 10 epochs on GRID and
            Lombard GRID, 20 CREMA-D, 50 VoxCeleb2), or ``None`` when ``steps`` is given.
        losses: loss name → weight, every key of :data:`a2v.losses.LOSS_KEYS` present.
        discriminator: whether the discriminator is trained and used in this phase.
        motion_source: ``"ground_truth"`` | ``"predicted"``.
        detach_motion: detach the predicted motion before the generator.
    """

    name: str
    steps: int | None
    losses: dict = field(default_factory=dict)
    discriminator: bool = True
    motion_source: str = "ground_truth"
    detach_motion: bool = True
    epochs: float | None = None

    def resolved(self, n_frames: int, batch_size: int) -> "Phase":
        """This phase with ``steps = ceil(epochs · n_frames / batch_size)`` (unchanged if ``steps`` is set).

        Raises:
            ValueError: ``n_frames`` or ``batch_size`` < 1.
        """
        if self.steps is not None:
            return self
        if n_frames < 1 or batch_size < 1:
            raise ValueError(f"phase {self.name!r}: cannot resolve epochs with {n_frames} frames, batch {batch_size}")
        return replace(self, steps=max(1, math.ceil(self.epochs * n_frames / batch_size)))

    def to_dict(self) -> dict:
        """Plain dict."""
        return {
            "name": self.name,
            "steps": self.steps,
            "epochs": self.epochs,
            "losses": dict(self.losses),
            "discriminator": self.discriminator,
            "motion_source": self.motion_source,
            "detach_motion": self.detach_motion,
        }


def parse_phase(d: dict, motion: str, index: int = 0, use_motion: bool = True) -> Phase:
    """Validate one ``phases[i]`` entry and fill in defaults.

    Defaults: ``name`` ``"phase{index}"``; ``discriminator`` true; ``motion_source``
    ``"ground_truth"``; ``detach_motion`` true; losses ``adv`` 1, ``l1_lower`` 10, ``fm`` 10,
    ``cam`` 1 (``adv``/``fm``/``cam`` default to 0 when ``discriminator`` is false),
    ``perceptual`` 0, and ``flow_mse`` 1 for ``motion="flow"`` / ``keypoint_mse`` 1 for
    ``motion="keypoints"`` (the other predictor key is 0; both 0 when ``use_motion`` is false).
    Exactly one of ``steps`` and ``epochs`` is given.

    Raises:
        ValueError: unknown keys, neither or both of steps/epochs, non-positive length, an
            adversarial term weighted in a phase without discriminator, the other motion kind's
            predictor loss weighted, a predictor loss weighted in a model without motion.
    """
    unknown = sorted(set(d) - set(PHASE_KEYS))
    if unknown:
        raise ValueError(f"phase {index}: unknown keys {unknown}; known: {list(PHASE_KEYS)}")
    if ("steps" in d) == ("epochs" in d):
        raise ValueError(f"phase {index}: give exactly one of 'steps' and 'epochs'")
    steps, epochs = None, None
    if "steps" in d:
        steps = int(d["steps"])
        if steps < 1:
            raise ValueError(f"phase {index}: steps must be >= 1, got {steps}")
    else:
        epochs = float(d["epochs"])
        if not 0 < epochs < math.inf:
            raise ValueError(f"phase {index}: epochs must be a positive number, got {d['epochs']}")
    disc = bool(d.get("discriminator", True))
    source = d.get("motion_source", "ground_truth")
    if source not in MOTION_SOURCES:
        raise ValueError(f"phase {index}: motion_source must be one of {MOTION_SOURCES}, got {source!r}")
    given = check_weights(d.get("losses") or {})
    weights = {k: 0.0 for k in LOSS_KEYS}
    for k, v in DEFAULT_WEIGHTS.items():
        weights[k] = v if (disc or k == "l1_lower") else 0.0
    own = "flow_mse" if motion == "flow" else "keypoint_mse"
    other = "keypoint_mse" if motion == "flow" else "flow_mse"
    weights[own] = 1.0 if use_motion else 0.0
    weights.update(given)
    if not disc:
        bad = [k for k in ("adv", "fm", "cam") if weights[k] > 0]
        if bad:
            raise ValueError(f"phase {index}: {bad} need the discriminator, which this phase turns off")
    if weights[other] > 0:
        raise ValueError(f"phase {index}: {other!r} is weighted but the model's motion is {motion!r}")
    if not use_motion and weights[own] > 0:
        raise ValueError(f"phase {index}: {own!r} is weighted but the model has use_motion: false (no predictor is used)")
    return Phase(
        name=str(d.get("name", f"phase{index}")),
        steps=steps,
        epochs=epochs,
        losses=weights,
        discriminator=disc,
        motion_source=source,
        detach_motion=bool(d.get("detach_motion", True)),
    )


def parse_phases(phases: list[dict], motion: str, use_motion: bool = True) -> list[Phase]:
    """Validate the ``phases`` list (at least one entry; unique names)."""
    if not phases:
        raise ValueError("config 'phases' must list at least one phase")
    out = [parse_phase(p, motion, i, use_motion) for i, p in enumerate(phases)]
    names = [p.name for p in out]
    if len(set(names)) != len(names):
        raise ValueError(f"phase names must be unique, got {names}")
    return out
