"""Reconstruction loss on the lower half of the frame (MAN supp. Eq. 3, main Eq. 5).

``L_RL = mean over n ∈ [0, W) × [H/2, H) of |R_n − G_n|``. The paper writes a sum; a2v takes the
mean (over batch, channels and the lower-half pixels) so the weight does not depend on the frame
size. Rows ``H // 2`` to ``H − 1`` are the lower half (the mouth region of an aligned face).
"""

from __future__ import annotations

import torch


def lower_half_l1(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over the lower half of ``(B, C, H, W)`` frames (scalar, float32).

    Raises:
        ValueError: shapes differ or are not 4-D.
    """
    if fake.shape != real.shape or fake.ndim != 4:
        raise ValueError(f"fake and real must be equal (B, C, H, W) shapes; got {tuple(fake.shape)} and {tuple(real.shape)}")
    h = fake.shape[-2]
    return (fake[..., h // 2 :, :].float() - real[..., h // 2 :, :].float()).abs().mean()
