"""The visualize CLI's pictures of a trained model (scripts/visualize.py): training samples with their
augmentations, test predictions, conv1 filters and feature maps. Training code: it loads a
LightningModule checkpoint and its data module; the drawing itself is keypoints.training.viz."""

from pathlib import Path

from hydra.utils import instantiate

from keypoints.training import viz
from keypoints.core.errors import KeypointsError
from keypoints.training.module import load_checkpoint
from keypoints.core import outputs


def write_plots(cfg) -> list[Path]:
    """The visualize CLI: writes the PNGs named in `cfg.plots` into `cfg.output`."""
    module = load_checkpoint(cfg.ckpt_path)
    datamodule = instantiate(dict(module.hparams.data_config, root=cfg.paths.data_dir))
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    unknown = set(cfg.plots) - {"samples", "predictions", "conv1"}
    if unknown:
        raise KeypointsError(f"plots: unknown {sorted(unknown)}; choose from samples, predictions, conv1")
    pictures = {}
    if "samples" in cfg.plots:
        datamodule.setup("fit")
        pictures["samples"] = viz.sample_grid(datamodule.datasets["train"], cfg.num_samples, cfg.augmentations, cfg.tile, cfg.seed)
    if {"predictions", "conv1"} & set(cfg.plots):
        datamodule.setup("test")
        test = datamodule.datasets["test"]
    if "predictions" in cfg.plots:
        pictures["predictions"] = viz.prediction_grid(module, test, cfg.num_test, cfg.tile)
    if "conv1" in cfg.plots:
        if cfg.face_index >= len(test):
            raise KeypointsError(f"face_index={cfg.face_index}: the test split has {len(test)} faces (0 to {len(test) - 1})")
        face = test[cfg.face_index]["image"]
        pictures["conv1_filters"] = viz.conv_filters(module)
        pictures["conv1_feature_maps"] = viz.feature_maps(module, face)
    written = []
    for name, picture in pictures.items():
        outputs.write_image(out / f"{name}.png", picture)
        written.append(out / f"{name}.png")
        print(out / f"{name}.png")
    return written
