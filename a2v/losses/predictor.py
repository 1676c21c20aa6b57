"""Mean-square losses of the motion predictors (MAN §3.0.1, supp. §2.1.6).

* Flow: MSE between predicted and Farnebäck flow, both divided by ``flow_scale`` pixels (so the
  value means the same at every crop size; ``flow_scale`` is ``ManConfig.effective_flow_scale``).
* Keypoint heatmaps: MSE between predicted and target heatmaps in [0, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def flow_mse(pred_px: torch.Tensor, target_px: torch.Tensor, flow_scale: float = 1.0) -> torch.Tensor:
    """MSE of ``(B, 2, S, S)`` flows given in pixels, measured in units of ``flow_scale`` pixels."""
    if pred_px.shape != target_px.shape:
        raise ValueError(f"flow shapes differ: {tuple(pred_px.shape)} vs {tuple(target_px.shape)}")
    return F.mse_loss(pred_px.float() / flow_scale, target_px.float() / flow_scale)


def heatmap_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE of ``(B, K, H, W)`` heatmaps."""
    if pred.shape != target.shape:
        raise ValueError(f"heatmap shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
    return F.mse_loss(pred.float(), target.float())
