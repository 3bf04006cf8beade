"""A checkpoint as one ONNX or TorchScript file: `keypoints export ckpt_path=CKPT [format=torchscript]`.

`quantize=int8` writes the ONNX model with int8 weights (7-bit by default: `reduce_range`) and uint8 activations (keypoints.training.quantize),
calibrated on training photos of `paths.data_dir`, for backend=onnxruntime-int8 or ckpt_path=<the file>.
"""

import tempfile
from pathlib import Path

import hydra
from omegaconf import DictConfig

from keypoints.core.checks import BOOLEAN
from keypoints.commands.cli import friendly_errors
from keypoints.detect import Detector, load_detector
from keypoints.core.errors import KeypointsError
from keypoints.training.export import FORMATS, export
from keypoints.inference.model_files import DEFAULT_MODEL
from keypoints.training.quantize import RULES as QUANTIZE_RULES, calibration, calibration_inputs, quantize, training_photos
from keypoints.core.outputs import guard_outputs


@hydra.main(version_base="1.3", config_path="pkg://keypoints.conf", config_name="export")
@friendly_errors(rules=(QUANTIZE_RULES, {"overwrite": BOOLEAN}))
def main(cfg: DictConfig) -> None:
    if cfg.format not in FORMATS:  # before `output`, whose default interpolates the format's suffix
        raise KeypointsError(f"format={cfg.format!r}: unknown export format (one of {', '.join(FORMATS)})")
    if cfg.quantize not in (None, "int8"):
        raise KeypointsError(f"quantize={cfg.quantize!r}: unknown (quantize=int8, or null for none)")
    if cfg.quantize and cfg.format != "onnx":
        raise KeypointsError(f"quantize=int8 needs format=onnx, not format={cfg.format}")
    if cfg.quantize:
        calibration(cfg.calibration.percentile)  # a bad percentile is one line now, not after the calibration work
    if cfg.ckpt_path and Path(cfg.ckpt_path).suffix in (".onnx", ".pt"):
        raise KeypointsError(f"{cfg.ckpt_path}: already an exported model; export takes a .ckpt from scripts/train.py")
    source = cfg.ckpt_path or f"{DEFAULT_MODEL.name} (shipped with keypoints)"
    output = Path(cfg.output)
    # Before loading anything: never the checkpoint itself (by path or link), and an existing file only
    # with overwrite=true; the file is written aside and renamed over its target (keypoints.core.outputs).
    guard_outputs(output.parent, [Path(cfg.ckpt_path or DEFAULT_MODEL)], [output], overwrite=True)
    if (output.exists() or output.is_symlink()) and not cfg.overwrite:
        raise KeypointsError(f"{output}: output= already exists; choose another output=, delete it or overwrite=true")
    # the Detector's own way to the module (in torch: export traces it), so calibration crops are cut the
    # way inference cuts them
    detector: Detector = load_detector(cfg, ckpt_path=cfg.ckpt_path, backend="torch")
    if not cfg.quantize:
        path = export(detector.module, output, cfg.format, checkpoint=source)
        print(f"{path}: {cfg.format} model of {source}")
        return
    photos = training_photos(cfg.calibration.labels, cfg.calibration.images, cfg.calibration.photos, cfg.calibration.seed)
    batches = calibration_inputs(detector, photos)
    with tempfile.TemporaryDirectory(prefix="keypoints-export-") as tmp:
        path = quantize(export(detector.module, Path(tmp) / "model.onnx", "onnx", checkpoint=source), output, batches,
                        reduce_range=cfg.reduce_range, percentile=cfg.calibration.percentile)
    print(f"{path}: int8 onnx model of {source}, calibrated on {sum(len(b) for b in batches)} face crops "
          f"from {len(photos)} training photos")
