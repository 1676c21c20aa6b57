"""Partial convolution (Liu et al., ECCV 2018, "Image inpainting for irregular holes using partial
convolutions"; and arXiv:1811.11718, "Partial convolution based padding") — MAN's
``Partial2DConv`` γ/β extractor (MAN §4.4, Table 2; refs. [28, 29]).

For a binary validity mask ``M`` (1 = valid pixel) and input ``X``, with ``W`` the kernel and
``b`` the bias, at each output location (Liu et al. 2018, Eq. 1–2)::

    x' = W·(X ⊙ M) · sum(1) / sum(M) + b    if sum(M) > 0
    x' = 0                                  otherwise
    m' = 1 if sum(M) > 0 else 0

where ``sum(1)`` is the number of elements under the kernel window (``C_in · k_h · k_w``) and
``sum(M)`` the number of valid ones. Zero padding counts as invalid, so with an all-ones mask
this is "partial convolution based padding" (ref. [29]): border outputs are re-weighted instead
of being dragged towards zero.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PartialConv2d(nn.Conv2d):
    """``nn.Conv2d`` with a single-channel validity mask, renormalised as in Liu et al. 2018, Eq. 1–2.

    Takes the usual ``nn.Conv2d`` arguments (``dilation``/``groups`` included).

    Forward:
        ``x (B, C_in, H, W)`` float; ``mask (B, 1, H, W)`` float in {0, 1} or ``None`` (all
        valid) → ``(y (B, C_out, H', W'), mask' (B, 1, H', W'))``. ``y`` is 0 where no valid
        input pixel lies under the window. The mask is not differentiated.

    Raises:
        ValueError: a mask whose batch or spatial size differs from ``x``'s, or with more than
            one channel.
    """

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        b, _, h, w = x.shape
        if mask is None:
            mask = x.new_ones((b, 1, h, w))
        elif mask.shape != (b, 1, h, w):
            raise ValueError(f"mask must have shape {(b, 1, h, w)}, got {tuple(mask.shape)}")
        with torch.no_grad():
            mask = mask.to(x.dtype)
            ones = torch.ones((1, 1, *self.kernel_size), dtype=x.dtype, device=x.device)
            # valid input elements under each window (all C_in channels share the mask)
            valid = F.conv2d(mask, ones, None, self.stride, self.padding, self.dilation) * (self.in_channels // self.groups)
            window = float(self.in_channels // self.groups * self.kernel_size[0] * self.kernel_size[1])
            new_mask = (valid > 0).to(x.dtype)
            ratio = window / valid.clamp(min=1.0) * new_mask
        raw = F.conv2d(x * mask, self.weight, None, self.stride, self.padding, self.dilation, self.groups)
        y = raw * ratio
        if self.bias is not None:
            y = (y + self.bias.view(1, -1, 1, 1)) * new_mask
        return y, new_mask


def validity_mask(x: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Pixels where any channel of ``x`` exceeds ``eps`` in magnitude — the "non-hole" region.

    For optical flow this is where the face moves; for keypoint heatmaps, near the landmarks.

    Args:
        x: ``(B, C, H, W)`` float.
        eps: magnitude threshold, in the units of ``x`` (flow units / heatmap values).

    Returns:
        ``(B, 1, H, W)`` float mask in {0, 1}.
    """
    return (x.detach().abs().amax(dim=1, keepdim=True) > eps).to(x.dtype)
