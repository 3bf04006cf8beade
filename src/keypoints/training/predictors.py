"""A loaded checkpoint's network as one call: (N, C, S, S) float32 inputs -> (N, 68, 2) keypoints
normalised to the input (geometry.normalize), in torch or exported on the fly for ONNX Runtime.
Model files run in the inference wing (keypoints.inference.onnx_runtime), which needs no torch."""

import tempfile
from pathlib import Path

import numpy as np
import torch

from keypoints.training import export
from keypoints.core.errors import KeypointsError
from keypoints.inference import onnx_runtime


class TorchPredictor:
    """Eager PyTorch on `device`; `metadata` as an exported file of the module would carry (keypoints.training.export)."""

    def __init__(self, module: torch.nn.Module, device: str | torch.device = "cpu"):
        check_torch_device(device)
        self.device = torch.device(device)
        self.module = module.to(self.device).eval()
        self.metadata = export.metadata(module)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = self.module(torch.from_numpy(batch).to(self.device))
        return out.float().cpu().numpy()


def check_torch_device(device) -> None:
    """`device=cuda` on a machine (or torch build) without CUDA is one line, not a torch traceback."""
    parsed = torch.device(device)
    if parsed.type == "cuda" and (not torch.cuda.is_available() or (parsed.index or 0) >= torch.cuda.device_count()):
        raise KeypointsError(f"device={device}: no such CUDA device here (torch {torch.__version__}, "
                             f"{torch.cuda.device_count()} CUDA devices); use device=cpu")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise KeypointsError(f"device={device}: MPS is not available here; use device=cpu")


class OnnxPredictor(onnx_runtime.OnnxPredictor):
    """keypoints.inference.onnx_runtime.OnnxPredictor, plus a loaded checkpoint exported on the fly."""

    @classmethod
    def from_module(cls, module: torch.nn.Module, device: str | torch.device = "cpu", threads: int | None = None) -> "OnnxPredictor":
        """Export `module` to a temporary ONNX file and load it (a few seconds for the models here)."""
        with tempfile.TemporaryDirectory(prefix="keypoints-onnx-") as tmp:
            # the session holds the model in memory: the file can go once it is loaded
            predictor = cls.from_file(export.export(module, Path(tmp) / "model.onnx", "onnx"), device, threads)
        predictor.path = None  # the file is gone: no other session of it (OnnxPredictor.with_threads)
        return predictor


def make_predictor(module: torch.nn.Module, runtime: str = "torch", device: str | torch.device = "cpu",
                   threads: int | None = None):
    """`module` under `runtime` ("torch" or "onnxruntime", as keypoints.inference.backends.resolve_backend
    decides). `threads`: ONNX Runtime's intra-op threads (torch keeps its own setting)."""
    if runtime == "onnxruntime":
        return OnnxPredictor.from_module(module, device, threads)
    return TorchPredictor(module, device)
