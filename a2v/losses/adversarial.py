"""Adversarial losses for a discriminator's logits (MAN supp. Eq. 2 / main Eq. 4).

Three forms, chosen by name:

* ``"original"`` (alias ``"bce"``): the log loss of Goodfellow et al., as written in MAN
  Eq. 2/4; D minimises ``BCE(real, 1) + BCE(fake, 0)``; G uses the non-saturating form
  ``BCE(fake, 1)``.
* ``"hinge"``: D ``mean(relu(1 − real)) + mean(relu(1 + fake))``; G ``−mean(fake)``.
* ``"lsgan"``: D ``mean((real − 1)²) + mean(fake²)``; G ``mean((fake − 1)²)``.

Each function takes one logits tensor of any shape, or a list of them (one per discriminator
scale), and sums over the list (pix2pixHD). Computation is in float32.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

GAN_LOSSES = ("original", "bce", "hinge", "lsgan")


def _check_kind(kind: str) -> str:
    if kind not in GAN_LOSSES:
        raise ValueError(f"unknown adversarial loss {kind!r}; supported: {', '.join(GAN_LOSSES)}")
    return "original" if kind == "bce" else kind


def _as_list(x: torch.Tensor | Sequence[torch.Tensor]) -> list[torch.Tensor]:
    return [x] if isinstance(x, torch.Tensor) else list(x)


def d_adversarial(real: torch.Tensor | Sequence[torch.Tensor], fake: torch.Tensor | Sequence[torch.Tensor], kind: str = "original") -> torch.Tensor:
    """Discriminator loss on real and fake logits (scalar; summed over scales)."""
    kind = _check_kind(kind)
    total = 0.0
    for r, f in zip(_as_list(real), _as_list(fake), strict=True):
        r, f = r.float(), f.float()
        if kind == "original":
            total = total + F.binary_cross_entropy_with_logits(r, torch.ones_like(r)) + F.binary_cross_entropy_with_logits(f, torch.zeros_like(f))
        elif kind == "hinge":
            total = total + F.relu(1.0 - r).mean() + F.relu(1.0 + f).mean()
        else:
            total = total + ((r - 1.0) ** 2).mean() + (f**2).mean()
    return total


def g_adversarial(fake: torch.Tensor | Sequence[torch.Tensor], kind: str = "original") -> torch.Tensor:
    """Generator loss on the discriminator's logits for generated frames (scalar; summed over scales)."""
    kind = _check_kind(kind)
    total = 0.0
    for f in _as_list(fake):
        f = f.float()
        if kind == "original":
            total = total + F.binary_cross_entropy_with_logits(f, torch.ones_like(f))
        elif kind == "hinge":
            total = total - f.mean()
        else:
            total = total + ((f - 1.0) ** 2).mean()
    return total
