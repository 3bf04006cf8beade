"""The network behind the Detector, as one call: (N, C, S, S) float32 inputs -> (N, 68, 2) keypoints
normalised to the input (geometry.normalize). One class per inference backend."""

import tempfile
from pathlib import Path

import numpy as np
import torch

from keypoints import export
from keypoints.checks import BACKENDS  # the one list of backends, also checked where configs are read
from keypoints.errors import KeypointsError
from keypoints.quantize import QUANTIZATION_KEY, saturates_on_this_cpu


class TorchPredictor:
    """Eager PyTorch on `device`."""

    def __init__(self, module: torch.nn.Module, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.module = module.to(self.device).eval()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = self.module(torch.from_numpy(batch).to(self.device))
        return out.float().cpu().numpy()


class OnnxPredictor:
    """ONNX Runtime on a model written by keypoints.export: `OnnxPredictor.from_file("model.onnx")`
    for a file from scripts/export.py, `from_module(module)` for a loaded checkpoint. `metadata` is
    what the file says about its input and output (export.metadata). CUDA when `device` asks for it
    and this onnxruntime build has the CUDA provider, else the CPU, on `threads` intra-op threads
    (None: ORT's default, one per core; the Detector's default is 1: docs/RESULTS.md "Time budget")."""

    def __init__(self, session, metadata: dict):
        self.session, self.metadata = session, metadata
        self.input_name = session.get_inputs()[0].name

    @classmethod
    def from_file(cls, path, device: str | torch.device = "cpu", threads: int | None = None) -> "OnnxPredictor":
        ort = _onnxruntime()
        path = Path(path)
        if not path.is_file():
            raise KeypointsError(f"{path}: ONNX model not found")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or 0  # 0: ORT's default
        try:
            session = ort.InferenceSession(str(path), options, providers=_providers(ort, torch.device(device)))
        except Exception as e:  # ORT raises its own Fail / InvalidProtobuf types for any unreadable file
            raise KeypointsError(f"{path}: not an ONNX model ({str(e).splitlines()[0]})") from None
        props = session.get_modelmeta().custom_metadata_map
        if saturates_on_this_cpu(props.get(QUANTIZATION_KEY)):
            raise KeypointsError(f"{path}: int8 model with 8-bit weights, which saturate on this CPU (x86 without VNNI) "
                                 "and move keypoints by pixels; re-make it with scripts/export.py quantize=int8 "
                                 "(7-bit weights, right on every CPU) or use backend=onnxruntime")
        return cls(session, export.decode(props, path))

    @classmethod
    def from_module(cls, module: torch.nn.Module, device: str | torch.device = "cpu", threads: int | None = None) -> "OnnxPredictor":
        """Export `module` to a temporary ONNX file and load it (a few seconds for the models here)."""
        _onnxruntime()  # fail before the export, not after
        with tempfile.TemporaryDirectory(prefix="keypoints-onnx-") as tmp:
            # the session holds the model in memory: the file can go once it is loaded
            return cls.from_file(export.export(module, Path(tmp) / "model.onnx", "onnx"), device, threads)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(batch, np.float32)})[0]


def make_predictor(module: torch.nn.Module, backend: str = "torch", device: str | torch.device = "cpu",
                   threads: int | None = None):
    """`module` under `backend`; "auto" runs a module in torch (the Detector's default, keypoints.detect).
    `threads`: ONNX Runtime's intra-op threads (torch keeps its own setting)."""
    if backend in ("torch", "auto"):
        return TorchPredictor(module, device)
    if backend == "onnxruntime":
        return OnnxPredictor.from_module(module, device, threads)
    if backend == "onnxruntime-int8":
        raise KeypointsError("backend=onnxruntime-int8 runs an int8 .onnx file, not a checkpoint: make one with "
                             "`python scripts/export.py ckpt_path=<ckpt> quantize=int8`, then ckpt_path=<that .onnx>")
    raise KeypointsError(f"backend={backend!r}: unknown inference backend (one of {', '.join(BACKENDS)})")


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise KeypointsError("backend='onnxruntime': onnxruntime is not installed "
                             "(a core dependency: pip install onnxruntime, or backend=torch)") from None
    return onnxruntime


def _providers(ort, device: torch.device) -> list:
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        return [("CUDAExecutionProvider", {"device_id": device.index or 0}), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]
