"""Class-activation-map adversarial loss (MAN Eq. 3, supp. Eq. 6).

The CAM logits ``n_D`` of every discriminator scale (``(B, 2)``: average- and max-pool logits)
are scored with the same adversarial form as the patch logits (``original`` / ``hinge`` /
``lsgan``), summed over scales.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from a2v.losses.adversarial import d_adversarial, g_adversarial


def _cam_list(outputs: Sequence[dict]) -> list[torch.Tensor]:
    cams = [o["cam_logits"] for o in outputs if "cam_logits" in o]
    if not cams:
        raise ValueError("the discriminator returns no CAM logits (model.discriminator.cam is off); set the cam weight to 0")
    return cams


def d_cam(real_outputs: Sequence[dict], fake_outputs: Sequence[dict], kind: str = "original") -> torch.Tensor:
    """Discriminator CAM loss (scalar)."""
    return d_adversarial(_cam_list(real_outputs), _cam_list(fake_outputs), kind)


def g_cam(fake_outputs: Sequence[dict], kind: str = "original") -> torch.Tensor:
    """Generator CAM loss (scalar)."""
    return g_adversarial(_cam_list(fake_outputs), kind)
