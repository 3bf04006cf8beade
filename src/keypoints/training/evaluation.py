"""Test a saved checkpoint with the data pipeline it was trained with."""

from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig

from keypoints.training.module import load_checkpoint
from keypoints.training.loop import finite_or_none, make_trainer
from keypoints.core import outputs


def evaluate(cfg: DictConfig) -> dict | None:
    module = load_checkpoint(cfg.ckpt_path)
    data_config = dict(module.hparams.data_config, root=cfg.paths.data_dir)  # same transforms, the user's data
    datamodule = instantiate(data_config)
    trainer = make_trainer(cfg.trainer, logger=False, callbacks=[], enable_checkpointing=False)
    (tested,) = trainer.test(module, datamodule=datamodule, verbose=False)
    metrics = {key.removeprefix("test/"): finite_or_none(value) for key, value in tested.items()}
    metrics.update(n=int(metrics["n"]), ckpt_path=str(cfg.ckpt_path))
    if not trainer.is_global_zero:
        return None  # under DDP, rank zero reports
    out = Path(cfg.metrics_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    outputs.write_json(out, metrics, indent=2)
    return metrics
