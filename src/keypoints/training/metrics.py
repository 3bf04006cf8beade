"""Landmark accuracy in original-image pixels, as torchmetrics Metrics whose states sum across processes.

NME: mean point-to-point error divided by the outer-eye-corner distance (points 36 and 45, 0-based;
the 300-W "inter-ocular" convention). FR@0.10: share of faces whose NME exceeds 0.10 (a NaN or infinite
prediction counts as a failure, and makes NME and RMSE NaN: it cannot look good).
RMSE: root mean squared error over all x and y coordinates, in pixels.
"""

import torch
from torchmetrics import Metric

from keypoints.core.landmarks import per_face_nme


class LandmarkMetrics(Metric):
    full_state_update = False
    higher_is_better = False

    def __init__(self, failure_threshold: float = 0.10, **kwargs):
        super().__init__(**kwargs)
        self.failure_threshold = failure_threshold
        for name in ("nme_sum", "failures", "squared_error_sum", "coordinates", "faces"):
            self.add_state(name, torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        pred, target = pred.double(), target.double()
        nme = per_face_nme(pred, target)
        self.nme_sum += nme.sum()
        self.failures += (~(nme <= self.failure_threshold)).sum()  # NaN is a failure, not a pass
        self.squared_error_sum += ((pred - target) ** 2).sum()
        self.coordinates += target.numel()
        self.faces += target.shape[0]

    def compute(self) -> dict[str, torch.Tensor]:
        return {
            "nme": self.nme_sum / self.faces,
            "fr10": self.failures / self.faces,
            "rmse_px": (self.squared_error_sum / self.coordinates).sqrt(),
            "n": self.faces,
        }
