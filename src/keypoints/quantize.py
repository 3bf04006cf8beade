"""8-bit models: an ONNX model from keypoints.export -> the same network with int8 weights and activations.

    batches = calibration_inputs(Detector(module), photos)      # what the network sees in real use
    quantize("model.onnx", "model.int8.onnx", batches)          # then Detector.from_checkpoint("model.int8.onnx")

ONNX Runtime's static quantization (QDQ format, per-channel int8 weights, uint8 activations), the
standard route to int8 convolutions on CPUs with VNNI. Static means each activation's range is fixed
in advance, so it is calibrated on the crops the Detector itself cuts out of real photos (first
frames and refinements alike): ranges measured on anything else (random pixels, whole frames)
would not be the ranges inference meets. The file keeps the source's keypoints metadata.
"""

import tempfile
from pathlib import Path

import numpy as np

from keypoints.data.datamodule import SPLITS
from keypoints.data.dataset import read_annotations
from keypoints.errors import KeypointsError


def training_photos(root, n: int, seed: int = 0) -> list[Path]:
    """A seeded sample of `n` photos from the data set's training split (calibration never sees the test split)."""
    folder, csv_name = SPLITS["train"]
    names, _ = read_annotations(Path(root) / csv_name)
    picked = np.random.default_rng(seed).permutation(len(names))[:n]
    return [Path(root) / folder / names[i] for i in sorted(picked)]


def calibration_inputs(detector, photos) -> list[np.ndarray]:
    """Every network input batch that `detector` makes while it runs on `photos` (paths or arrays)."""
    batches, predict = [], detector.predict

    def record(batch: np.ndarray) -> np.ndarray:
        batches.append(np.array(batch, np.float32))
        return predict(batch)

    detector.predict = record
    try:
        for photo in photos:
            detector(photo)
    finally:
        detector.predict = predict
    if not batches:
        raise KeypointsError(f"no face found in the {len(photos)} calibration photos: nothing to calibrate int8 ranges on")
    return batches


def quantize(source, target, batches: list[np.ndarray]) -> Path:
    """Write `source` (.onnx) quantized to int8 as `target`, activation ranges from `batches`."""
    try:
        import onnx
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError:
        raise KeypointsError("int8 quantization needs onnx and onnxruntime (pip install -e '.[onnx]')") from None

    class Batches(CalibrationDataReader):
        def __init__(self, name: str):
            self.items = iter([{name: b} for b in batches])

        def get_next(self):
            return next(self.items, None)

    source, target = Path(source), Path(target)
    model = onnx.load(str(source))
    with tempfile.TemporaryDirectory(prefix="keypoints-int8-") as tmp:
        # shape inference and graph clean-up first, as ONNX Runtime recommends before quantizing
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared))
        # The output layer stays float, as under bf16 (models/resnet.py): its outputs are the keypoints,
        # which 8 bits would round to ~0.4 px of a 112 px input. Measured end to end on the test split
        # (scripts/benchmark.py) with experiment=face_resnet's model: NME 4.32% / FR@0.10 1.6% all int8, 4.31% / 1.4%
        # with a float output layer, 4.28% / 1.3% float32; int8 convolutions alone (float residual
        # additions) 5.61%.
        nodes = onnx.load(str(prepared)).graph.node
        head = [n.name for n in nodes if n.op_type in ("Gemm", "MatMul")][-1:]
        target.parent.mkdir(parents=True, exist_ok=True)
        quantize_static(str(prepared), str(target), Batches(model.graph.input[0].name), quant_format=QuantFormat.QDQ,
                        per_channel=True, weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                        nodes_to_exclude=head)
    quantized = onnx.load(str(target))
    del quantized.metadata_props[:]  # the source's keypoints metadata, whatever the tools kept of it
    quantized.metadata_props.extend(model.metadata_props)
    quantized.metadata_props.add(key="quantization", value=f"int8 static (QDQ, per-channel), {len(batches)} calibration batches")
    onnx.save(quantized, str(target))
    return target
