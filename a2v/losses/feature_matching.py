"""Feature-matching loss over discriminator layers (MAN supp. Eq. 4, pix2pixHD).

``L_FM = (1 / K) Σ_k Σ_i mean|D_k^(i)(real) − D_k^(i)(fake)|`` — for each scale k the L1
distance of every intermediate feature map i, normalised by its number of elements (``N_i`` of
Eq. 4), summed over layers; a2v averages over the K scales (pix2pixHD's ``1 / num_D``). The real
features are detached: this loss trains the generator only.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def feature_matching(real_outputs: Sequence[dict], fake_outputs: Sequence[dict]) -> torch.Tensor:
    """Feature-matching loss between discriminator outputs on real and generated frames.

    Args:
        real_outputs, fake_outputs: lists (one per scale) of dicts with a ``features`` list, as
            returned by :class:`a2v.models.discriminators.MultiScalePatchGAN`.

    Returns:
        Scalar float32 tensor.
    """
    total = 0.0
    n = 0
    for real, fake in zip(real_outputs, fake_outputs, strict=True):
        for fr, ff in zip(real["features"], fake["features"], strict=True):
            total = total + (fr.detach().float() - ff.float()).abs().mean()
        n += 1
    if n == 0:
        raise ValueError("feature_matching needs at least one discriminator scale")
    return total / n
