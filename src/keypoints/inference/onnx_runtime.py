"""The keypoint network under ONNX Runtime, from a file written by keypoints.training.export (or shipped)."""

import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort

from keypoints.core.errors import KeypointsError
from keypoints.core.io import not_a_file
from keypoints.core.checks import device_type
from keypoints.inference.cpu import QUANTIZATION_KEY, saturates_on_this_cpu
from keypoints.inference.model_files import decode
from keypoints.inference.pipeline import eval_pipeline

# The load check's time limit. Two crops take milliseconds in any model `keypoints export` writes; a file
# from outside could hold a graph that never ends (a Loop of 2**62 turns), which no signal interrupts.
CHECK_SECONDS = 30.0


class OnnxPredictor:
    """(N, C, S, S) float32 inputs -> (N, 68, 2) keypoints normalised to the input (geometry.normalize).
    `OnnxPredictor.from_file("model.onnx")`; `metadata` is what the file says about its input and
    output (keypoints.inference.model_files). CUDA when `device` asks for it and this onnxruntime build
    has the CUDA provider, else the CPU, on `threads` intra-op threads (None: ORT's default, one per
    core; the Detector makes it with RuntimeConfig.session_threads and, for a photo on its own,
    `with_threads`: keypoints.inference.config)."""

    def __init__(self, session, metadata: dict, path: Path | None = None, device="cpu"):
        self.session, self.metadata = session, metadata
        self.input_name = session.get_inputs()[0].name
        self.path, self._device = path, device  # the file, for another session of it (with_threads); None: gone

    def with_threads(self, threads: int) -> "OnnxPredictor":
        """The same model in a session of its own on `threads` intra-op threads (spinning between calls,
        ONNX Runtime's default: the network's passes come close together), or this one if it already has
        them or its file is gone (a module exported to a temporary file)."""
        if self.path is None or threads == self.session.get_session_options().intra_op_num_threads:
            return self
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(self.path), options, providers=providers(self._device))
        return OnnxPredictor(session, self.metadata, self.path, self._device)

    @classmethod
    def from_file(cls, path, device="cpu", threads: int | None = None) -> "OnnxPredictor":
        path = Path(path)
        if not path.is_file():
            kind = not_a_file(path)  # a FIFO or a device exists, but is no model file (and reading it could block)
            raise KeypointsError(f"{path}: {'ONNX model not found' if kind in (None, 'not found') else f'{kind}, not an ONNX model file'}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or 0  # 0: ORT's default
        try:
            session = ort.InferenceSession(str(path), options, providers=providers(device))
        except Exception as e:  # ORT raises its own Fail / InvalidProtobuf types for any unreadable file
            raise KeypointsError(f"{path}: not an ONNX model ({str(e).splitlines()[0]})") from None
        props = session.get_modelmeta().custom_metadata_map
        if saturates_on_this_cpu(props.get(QUANTIZATION_KEY)):
            raise KeypointsError(f"{path}: int8 model with 8-bit weights, which saturate on this CPU (x86 without VNNI) "
                                 "and move keypoints by pixels; re-make it with scripts/export.py quantize=int8 "
                                 "(7-bit weights, right on every CPU) or use backend=onnxruntime")
        meta = decode(props, path)
        eval_pipeline(meta["data_config"], path)  # a file from outside: its pipeline is checked at load, by name
        predictor = cls(session, meta, path, device)
        predictor.check(path)
        return predictor

    def check(self, path) -> None:
        """The model run once at load on a batch of two blank crops of the size its metadata gives:
        a model of another input or output shape, a fixed batch of one, or metadata that lies is one
        line now rather than a cut ONNX Runtime error on every photo."""
        size, channels = self.metadata["input_size"], self.metadata["channels"]
        options = ort.RunOptions()
        options.log_severity_level = 4  # the failure is ours to report, in one line, not ORT's log too
        stop = threading.Timer(CHECK_SECONDS, lambda: setattr(options, "terminate", True))  # ORT stops at its next node
        stop.daemon = True
        stop.start()
        try:
            out = self.session.run(None, {self.input_name: np.zeros((2, channels, size, size), np.float32)}, options)[0]
        except Exception as e:  # noqa: BLE001 - ORT's own Fail / InvalidArgument types
            if options.terminate:
                raise KeypointsError(f"{path}: does not finish a batch of two blank ({channels}, {size}, {size}) inputs in "
                                     f"{CHECK_SECONDS:g} s (a graph that loops?); export it with `keypoints export`") from None
            reason = " ".join(str(e).split())[:160]
            raise KeypointsError(f"{path}: does not run as its metadata says ((N, {channels}, {size}, {size}) inputs: "
                                 f"{reason}); export it with `keypoints export`") from None
        finally:
            stop.cancel()
        if getattr(out, "shape", None) != (2, 68, 2):
            raise KeypointsError(f"{path}: does not run as its metadata says (gives {getattr(out, 'shape', type(out))} for "
                                 f"2 inputs of ({channels}, {size}, {size}), not (2, 68, 2)); export it with `keypoints export`")

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(batch, np.float32)})[0]


def providers(device) -> list:
    if device_type(device) == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        index = str(device).partition(":")[2]
        return [("CUDAExecutionProvider", {"device_id": int(index or 0)}), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]
