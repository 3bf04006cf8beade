"""Build everything a run needs from a composed Hydra config, train, test, and record the results."""

import json
import time
from pathlib import Path

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from keypoints.errors import KeypointsError
from keypoints.module import KeypointModule


def instantiate_group(group: DictConfig | None) -> list:
    """Callbacks and loggers are dicts of named configs; `name: null` switches one off."""
    return [instantiate(c) for c in (group or {}).values() if c is not None and "_target_" in c]


def build_module(cfg: DictConfig) -> KeypointModule:
    plain = lambda node: OmegaConf.to_container(node, resolve=True)  # noqa: E731 - checkpoints hold plain dicts
    return KeypointModule(
        net=plain(cfg.model.net),
        input_size=cfg.model.input_size,
        loss=plain(cfg.loss),
        optimizer=plain(cfg.optimizer),
        scheduler=plain(cfg.scheduler) if cfg.get("scheduler") else None,
        channels_last=cfg.model.get("channels_last", False),
        data_config=plain(cfg.data),
    )


def train(cfg: DictConfig) -> dict:
    """Fit on train, select on val, then test the best checkpoint; returns and writes metrics.json."""
    if cfg.get("ckpt_path") and not Path(cfg.ckpt_path).is_file():
        raise KeypointsError(f"{cfg.ckpt_path}: checkpoint not found (ckpt_path=... resumes from a .ckpt file)")
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)
    datamodule = instantiate(cfg.data)
    module = build_module(cfg)
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=instantiate_group(cfg.get("callbacks")),
                                     logger=instantiate_group(cfg.get("logger")) or False)
    for logger in trainer.loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    fit_seconds = time.perf_counter() - start
    best_val = trainer.checkpoint_callback.best_model_score if trainer.checkpoint_callback else None
    best_ckpt = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""

    results = {"epochs": trainer.current_epoch, "fit_seconds": round(fit_seconds, 1),
               "best_val_nme": None if best_val is None else float(best_val), "best_ckpt": best_ckpt}
    if cfg.get("test", True) and not trainer.interrupted:
        trainer.test(module, datamodule=datamodule, ckpt_path=best_ckpt or None)
        results["test"] = module.last_metrics["test"]
    if trainer.is_global_zero:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "metrics.json").write_text(json.dumps(results, indent=2) + "\n")
    return results
