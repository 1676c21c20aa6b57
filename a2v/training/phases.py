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

from dataclasses import dataclass, field

from a2v.losses.composite import LOSS_KEYS, check_weights

MOTION_SOURCES = ("ground_truth", "predicted")
PHASE_KEYS = ("name", "steps", "losses", "discriminator", "motion_source", "detach_motion")

DEFAULT_WEIGHTS = {"adv": 1.0, "l1_lower": 10.0, "fm": 10.0, "cam": 1.0}
"""Default weights of the generator terms (predictor MSE default: 1.0 for the model's motion kind)."""


@dataclass(frozen=True)
class Phase:
    """One curriculum phase.

    Attributes:
        name: label (used in logs and checkpoints).
        steps: optimisation steps (generator updates) of this phase.
        losses: loss name → weight, every key of :data:`a2v.losses.LOSS_KEYS` present.
        discriminator: whether the discriminator is trained and used in this phase.
        motion_source: ``"ground_truth"`` | ``"predicted"``.
        detach_motion: detach the predicted motion before the generator.
    """

    name: str
    steps: int
    losses: dict = field(default_factory=dict)
    discriminator: bool = True
    motion_source: str = "ground_truth"
    detach_motion: bool = True

    def to_dict(self) -> dict:
        """Plain dict."""
        return {
            "name": self.name,
            "steps": self.steps,
            "losses": dict(self.losses),
            "discriminator": self.discriminator,
            "motion_source": self.motion_source,
            "detach_motion": self.detach_motion,
        }


def parse_phase(d: dict, motion: str, index: int = 0) -> Phase:
    """Validate one ``phases[i]`` entry and fill in defaults.

    Defaults: ``name`` ``"phase{index}"``; ``discriminator`` true; ``motion_source``
    ``"ground_truth"``; ``detach_motion`` true; losses ``adv`` 1, ``l1_lower`` 10, ``fm`` 10,
    ``cam`` 1 (``adv``/``fm``/``cam`` default to 0 when ``discriminator`` is false), and
    ``flow_mse`` 1 for ``motion="flow"`` / ``keypoint_mse`` 1 for ``motion="keypoints"`` (the
    other predictor key is 0).

    Raises:
        ValueError: unknown keys, non-positive steps, an adversarial term weighted in a phase
            without discriminator, the other motion kind's predictor loss weighted.
    """
    unknown = sorted(set(d) - set(PHASE_KEYS))
    if unknown:
        raise ValueError(f"phase {index}: unknown keys {unknown}; known: {list(PHASE_KEYS)}")
    if "steps" not in d:
        raise ValueError(f"phase {index}: 'steps' is required")
    steps = int(d["steps"])
    if steps < 1:
        raise ValueError(f"phase {index}: steps must be >= 1, got {steps}")
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
    weights[own] = 1.0
    weights.update(given)
    if not disc:
        bad = [k for k in ("adv", "fm", "cam") if weights[k] > 0]
        if bad:
            raise ValueError(f"phase {index}: {bad} need the discriminator, which this phase turns off")
    if weights[other] > 0:
        raise ValueError(f"phase {index}: {other!r} is weighted but the model's motion is {motion!r}")
    return Phase(
        name=str(d.get("name", f"phase{index}")),
        steps=steps,
        losses=weights,
        discriminator=disc,
        motion_source=source,
        detach_motion=bool(d.get("detach_motion", True)),
    )


def parse_phases(phases: list[dict], motion: str) -> list[Phase]:
    """Validate the ``phases`` list (at least one entry; unique names)."""
    if not phases:
        raise ValueError("config 'phases' must list at least one phase")
    out = [parse_phase(p, motion, i) for i, p in enumerate(phases)]
    names = [p.name for p in out]
    if len(set(names)) != len(names):
        raise ValueError(f"phase names must be unique, got {names}")
    return out
