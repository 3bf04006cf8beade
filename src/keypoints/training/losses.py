"""Losses for landmark regression beyond what torch.nn has."""

import torch
from torch import nn


class WingLoss(nn.Module):
    """Wing loss (Feng et al., CVPR 2018): logarithmic for errors below `width`, L1 above.

    Small and medium errors keep a strong gradient (L2's vanishes as the error shrinks), which is
    what a model at a few pixels' error needs. `width` and `curvature` are in the targets' units:
    normalised keypoints, 1 unit = input_size / 4 (0.36 ~ 10 px and 0.07 ~ 2 px of a 112 px input,
    the paper's values).
    """

    def __init__(self, width: float = 0.36, curvature: float = 0.07, reduction: str = "mean"):
        super().__init__()
        self.width, self.curvature, self.reduction = width, curvature, reduction
        self.c = width - width * torch.log1p(torch.tensor(width / curvature)).item()

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        x = (pred.float() - target.float()).abs()
        loss = torch.where(x < self.width, self.width * torch.log1p(x / self.curvature), x - self.c)
        return loss if self.reduction == "none" else loss.mean()


def weighted_mean(elementwise: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(B, 68, 2) per-coordinate losses and (B, 68) point weights -> the weighted mean; with every
    weight 1 it is the plain mean, and a point of weight 0 (one no teacher may teach) adds nothing."""
    w = weights.to(elementwise.dtype)[..., None].expand_as(elementwise)
    return (elementwise * w).sum() / w.sum().clamp(min=1.0)
