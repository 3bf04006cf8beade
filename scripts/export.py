"""A checkpoint as one ONNX or TorchScript file: `python scripts/export.py ckpt_path=CKPT [format=torchscript]`."""

import hydra
from omegaconf import DictConfig

from keypoints.cli import friendly_errors
from keypoints.errors import KeypointsError
from keypoints.export import FORMATS, export
from keypoints.module import DEFAULT_MODEL, load_checkpoint


@hydra.main(version_base="1.3", config_path="../conf", config_name="export")
@friendly_errors
def main(cfg: DictConfig) -> None:
    if cfg.format not in FORMATS:  # before `output`, whose default interpolates the format's suffix
        raise KeypointsError(f"format={cfg.format!r}: unknown export format (one of {', '.join(FORMATS)})")
    source = cfg.ckpt_path or f"{DEFAULT_MODEL.name} (shipped with keypoints)"
    path = export(load_checkpoint(cfg.ckpt_path), cfg.output, cfg.format, checkpoint=source)
    print(f"{path}: {cfg.format} model of {source}")


if __name__ == "__main__":
    main()
