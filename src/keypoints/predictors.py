"""The network behind the Detector, as one call: (N, C, S, S) float32 inputs -> (N, 68, 2) keypoints
normalised to the input (geometry.normalize). One class per inference backend."""

import numpy as np
import torch

from keypoints.errors import KeypointsError
from keypoints.module import KeypointModule

BACKENDS = ("torch",)


class TorchPredictor:
    """Eager PyTorch on `device`."""

    def __init__(self, module: KeypointModule, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.module = module.to(self.device).eval()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = self.module(torch.from_numpy(batch).to(self.device))
        return out.float().cpu().numpy()


def make_predictor(module: KeypointModule, backend: str = "torch", device: str | torch.device = "cpu"):
    if backend == "torch":
        return TorchPredictor(module, device)
    raise KeypointsError(f"backend={backend!r}: unknown inference backend (one of {', '.join(BACKENDS)})")
