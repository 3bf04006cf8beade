"""int8 models: an ONNX model from keypoints.training.export -> the same network with int8 weights and activations.

    batches = calibration_inputs(Detector(module), photos)      # what the network sees in real use
    quantize("model.onnx", "model.int8.onnx", batches)          # then Detector.from_checkpoint("model.int8.onnx")

ONNX Runtime's static quantization (QDQ format, per-channel int8 weights, uint8 activations), the
standard route to int8 convolutions on x86 CPUs. Weights use 7 of their 8 bits (`reduce_range`): on
x86 CPUs without VNNI (AVX2, and AVX-512 before VNNI) ONNX Runtime multiplies uint8 x int8 pairs
with VPMADDUBSW, whose 16-bit sums of two products saturate with full-range weights (2·255·127 >
32767) and move keypoints by several pixels; 7-bit weights cannot overflow (2·255·63 < 32767), so
the same file gives the same keypoints on every CPU. `cpu_can_run` refuses, with one line, a
full-range file on a CPU where it would saturate. Static means each activation's range is fixed
in advance, so it is calibrated on the crops the Detector itself cuts out of real photos (first
frames and refinements alike): ranges measured on anything else (random pixels, whole frames)
would not be the ranges inference meets. The file keeps the source's keypoints metadata.
"""

import json
import tempfile
from pathlib import Path

import numpy as np

from keypoints.core.checks import optional, whole
from keypoints.core.annotations import read_annotations
from keypoints.core.errors import KeypointsError
from keypoints.inference.cpu import QUANTIZATION_KEY
from keypoints.core import outputs

RULES = {  # keypoints/conf/export.yaml
    "calibration.photos": whole(1),
    "seed": optional(whole(0)),
}


def training_photos(labels, images, n: int, seed: int = 0) -> list[Path]:
    """A seeded sample of `n` photos named by a training CSV (`labels`) in the folder `images`
    (calibration never sees a test or dev split)."""
    names, _ = read_annotations(Path(labels))
    picked = np.random.default_rng(seed).permutation(len(names))[:n]
    return [Path(images) / names[i] for i in sorted(picked)]


def calibration_inputs(detector, photos) -> list[np.ndarray]:
    """Every network input batch that `detector` makes while it runs on `photos` (paths or arrays)."""
    batches, predict = [], detector.predictor

    def record(batch: np.ndarray) -> np.ndarray:
        batches.append(np.array(batch, np.float32))
        return predict(batch)

    detector.predictor = record
    try:
        for photo in photos:
            detector(photo)
    finally:
        detector.predictor = predict
    if not batches:
        raise KeypointsError(f"no face found in the {len(photos)} calibration photos: nothing to calibrate int8 ranges on")
    return batches




def quantize(source, target, batches: list[np.ndarray], reduce_range: bool = True, percentile: float | None = 99.99) -> Path:
    """Write `source` (.onnx) quantized to int8 as `target`, activation ranges from `batches`: each
    activation's range covers `percentile`% of its calibration values (None: all of them, min-max);
    `reduce_range=False` keeps 8-bit weights, right only on CPUs with VNNI (see the module's doc)."""
    try:
        import onnx
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError:
        raise KeypointsError("int8 quantization needs onnx and onnxruntime (pip install -e '.[onnx]')") from None
    options = calibration(percentile)

    class Batches(CalibrationDataReader):
        def __init__(self, name: str):
            # one face at a time: the percentile calibrator stacks its inputs, so they must be one shape
            self.items = iter([{name: b[i:i + 1]} for b in batches for i in range(len(b))])

        def get_next(self):
            return next(self.items, None)

    source, target = Path(source), Path(target)
    model = onnx.load(str(source))
    with tempfile.TemporaryDirectory(prefix="keypoints-int8-") as tmp:
        # shape inference and graph clean-up first, as ONNX Runtime recommends before quantizing
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared))
        # The first and the output layer stay float. The output layer's outputs are the keypoints,
        # which 8 bits would round to ~0.4 px of a 112 px input. The stem convolution reads one channel
        # (9 weights an output): 7-bit weights cost it more than any other layer, and it is a small
        # share of the work. Measured on the shipped model (keypoints 0.52 px of its input off float
        # with all convolutions int8, 0.37 px with a float stem): scripts/benchmark.py, README "int8".
        nodes = onnx.load(str(prepared)).graph.node
        convs, dense = [n.name for n in nodes if n.op_type == "Conv"], [n.name for n in nodes if n.op_type in ("Gemm", "MatMul")]
        keep_float = convs[:1] + dense[-1:]
        quantized_file = Path(tmp) / "quantized.onnx"  # target is written once, whole, below
        quantize_static(str(prepared), str(quantized_file), Batches(model.graph.input[0].name), quant_format=QuantFormat.QDQ,
                        per_channel=True, weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                        reduce_range=reduce_range, nodes_to_exclude=keep_float, **options)
        quantized = onnx.load(str(quantized_file))
    del quantized.metadata_props[:]  # the source's keypoints metadata, whatever the tools kept of it
    quantized.metadata_props.extend(model.metadata_props)
    quantized.metadata_props.add(key=QUANTIZATION_KEY, value=json.dumps(
        {"method": "static QDQ, per-channel, first and last layer float", "activations": "uint8", "weights": "int8", "reduce_range": reduce_range,
         "calibration_batches": len(batches), "calibration_faces": sum(len(b) for b in batches), "percentile": percentile}))
    target.parent.mkdir(parents=True, exist_ok=True)
    with outputs.atomic_path(target) as temp:
        onnx.save(quantized, str(temp))
    return target


def calibration(percentile: float | None) -> dict:
    """quantize_static's calibration options: a range that leaves out the rarest activations (the top
    (100 - percentile)% of absolute values) spends the 256 levels on the values that occur. Measured on
    the shipped model (keypoints off float on held-out training and unlabelled wild crops, README "int8"):
    99.99 halves min-max's deviation; 99.9 and below clip too much."""
    from onnxruntime.quantization import CalibrationMethod

    if percentile is None:
        return {"calibrate_method": CalibrationMethod.MinMax}
    if not (isinstance(percentile, (int, float)) and 50 < percentile < 100):
        raise KeypointsError(f"calibration.percentile={percentile!r}: a number between 50 and 100 (exclusive), or null for min-max")
    return {"calibrate_method": CalibrationMethod.Percentile, "extra_options": {"CalibPercentile": float(percentile)}}


