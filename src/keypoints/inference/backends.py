"""Which runtime runs the keypoint network: the one place `backend` is checked and `auto` decided.

    auto              the shipped model: on a CPU its int8 or its float copy under ONNX Runtime, whichever
                      this CPU runs faster with the same points (measured once: keypoints.inference.choice);
                      its checkpoint in torch on a GPU (int8 on ORT's CPU kernels would be the slow path there); a
                      checkpoint of one's own: torch; an exported .onnx file: ONNX Runtime, as written
    torch             a checkpoint in PyTorch (the `train` extra)
    onnxruntime       the shipped model's float copy, or a checkpoint exported on the fly
    onnxruntime-int8  the shipped model's int8 copy (a .onnx of one's own runs as it was written)
"""

from pathlib import Path

from keypoints.core.checks import device_type
from keypoints.core.errors import KeypointsError
from keypoints.inference.choice import shipped_file
from keypoints.inference.model_files import DEFAULT_INT8_MODEL, DEFAULT_MODEL, DEFAULT_ONNX_MODEL

# onnxruntime-int8: a model quantized by scripts/export.py quantize=int8 (the shipped one when no
# checkpoint is given); a quantized model needs calibration photos, so it is not made on the fly.
# The setting's default and check: keypoints.inference.config.RuntimeConfig.
BACKENDS = ("auto", "torch", "onnxruntime", "onnxruntime-int8")


def resolve_backend(backend: str, device, model=None) -> tuple[str, Path | None]:
    """(the runtime that runs the network, the model file it runs) for `model`: None (the shipped
    model), a path (a .ckpt, its run folder, or an exported .onnx), or a loaded module (file None).
    `backend` and `device` as RuntimeConfig checked them."""
    kind = device_type(device)
    if isinstance(model, (str, Path)) and Path(model).suffix == ".onnx":
        if backend == "torch":
            raise KeypointsError(f"{model}: an exported .onnx file runs under ONNX Runtime, not backend=torch")
        return "onnxruntime", Path(model)
    if model is None:
        if backend == "auto" and kind == "cpu":
            return "onnxruntime", shipped_file().path
        if backend == "onnxruntime-int8":
            return "onnxruntime", DEFAULT_INT8_MODEL
        if backend == "onnxruntime":
            return "onnxruntime", DEFAULT_ONNX_MODEL
        return "torch", DEFAULT_MODEL
    if backend == "onnxruntime-int8":
        raise KeypointsError("backend=onnxruntime-int8 runs an int8 .onnx file, not a checkpoint: make one with "
                             "`python scripts/export.py ckpt_path=<ckpt> quantize=int8`, then ckpt_path=<that .onnx>")
    return ("onnxruntime" if backend == "onnxruntime" else "torch"), (None if not isinstance(model, (str, Path)) else Path(model))


def explain(backend: str, device, model=None) -> str:
    """Which file runs the network and why, in words (`keypoints benchmark`, the server's /api/info)."""
    kind, path = resolve_backend(backend, device, model)
    if model is None and backend == "auto" and device_type(device) == "cpu":
        return f"{path.name} under ONNX Runtime (auto: {shipped_file().why})"
    where = "ONNX Runtime" if kind == "onnxruntime" else "torch"
    return f"{path.name if path is not None else 'a loaded module'} under {where} (backend={backend})"
