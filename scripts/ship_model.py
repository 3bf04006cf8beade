"""Make a checkpoint the package's default model: `python scripts/ship_model.py ckpt_path=CKPT`.

Writes a slim copy (weights and hyper-parameters, no optimiser state) to src/keypoints/weights/,
where `keypoints.Detector()` and the CLIs find it when no ckpt_path is given.
"""

import hydra
from omegaconf import DictConfig

from keypoints.commands.cli import friendly_errors
from keypoints.commands import hydra_script
from keypoints.core.checks import one_of
from keypoints.core.errors import KeypointsError
from keypoints.inference.model_files import DEFAULT_INT8_MODEL, DEFAULT_MODEL, DEFAULT_ONNX_MODEL
from keypoints.training.module import slim_checkpoint


RULES = {"weights_dtype": one_of("float32", "float16", "bfloat16")}  # conf/ship_model.yaml


@hydra_script  # Hydra's own errors in one line, as the keypoints commands give them
@hydra.main(version_base="1.3", config_path="../conf", config_name="ship_model")
@friendly_errors(rules=(RULES,))
def main(cfg: DictConfig) -> None:
    target = slim_checkpoint(cfg.ckpt_path, cfg.target or DEFAULT_MODEL, cfg.weights_dtype)
    megabytes = target.stat().st_size / 1e6
    if megabytes > cfg.max_megabytes:
        target.unlink()
        raise KeypointsError(f"{cfg.ckpt_path}: {megabytes:.1f} MB slimmed, over max_megabytes={cfg.max_megabytes}")
    print(f"{target}: {megabytes:.1f} MB, from {cfg.ckpt_path}")
    if target == DEFAULT_MODEL:  # the default backend runs its float ONNX copy, onnxruntime-int8 its int8 copy: made from it
        print(f"now re-make its float and int8 copies: python scripts/export.py output={DEFAULT_ONNX_MODEL}; "
              f"python scripts/export.py quantize=int8 output={DEFAULT_INT8_MODEL} (from a quantization-aware run, "
              "add calibration.percentile=99.999: docs/MODEL_CARD.md)")


if __name__ == "__main__":
    main()
