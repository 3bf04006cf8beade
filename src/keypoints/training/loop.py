"""Build everything a run needs from a composed Hydra config, train, test, and record the results."""

import json
import math
import signal
import time
from pathlib import Path

import lightning as L
import torch
import wandb
from hydra.utils import instantiate
from lightning.pytorch.callbacks import WeightAveraging
from lightning.pytorch.loggers import WandbLogger
from omegaconf import DictConfig, OmegaConf

from keypoints.training.checkpoints import SAFE_GLOBALS, read_checkpoint, run_checkpoint
from keypoints.core.errors import KeypointsError
from keypoints.training import sweep
from keypoints.training.module import KeypointModule, load_checkpoint
from keypoints.core import outputs


def instantiate_group(group: DictConfig | None) -> list:
    """Callbacks and loggers are dicts of named configs; `name: null` switches one off."""
    return [instantiate(c) for c in (group or {}).values() if c is not None and "_target_" in c]


def make_trainer(trainer_cfg: DictConfig, **kwargs) -> L.Trainer:
    """The Trainer from config, refusing a launcher whose metrics came out wrong here."""
    try:
        trainer = instantiate(trainer_cfg, **kwargs)
    except Exception as e:  # noqa: BLE001 - Lightning's MisconfigurationException and friends, as one line
        cause = e.__cause__ or e
        raise KeypointsError(f"trainer: {str(cause).strip().splitlines()[0]}") from None
    if getattr(trainer.strategy, "_start_method", None) in ("spawn", "forkserver"):
        # Measured with 2 CPU processes: test n=16 for 8 faces (each face counted twice).
        raise KeypointsError(f"trainer.strategy={trainer_cfg.strategy} double-counts metrics here: use trainer.strategy=ddp")
    return trainer


def build_module(cfg: DictConfig) -> KeypointModule:
    plain = lambda node: OmegaConf.to_container(node, resolve=True)  # noqa: E731 - checkpoints hold plain dicts
    return KeypointModule(
        net=plain(cfg.model.net),
        input_size=cfg.model.input_size,
        loss=plain(cfg.loss),
        optimizer=plain(cfg.optimizer),
        scheduler=plain(cfg.scheduler) if cfg.get("scheduler") else None,
        channels_last=cfg.model.channels_last,
        bn_recalibration_batches=cfg.model.bn_recalibration_batches,
        data_config=plain(cfg.data),
        teacher_weight=cfg.teacher_weight if cfg.get("teacher") else 0.0,
    )


def init_weights(module: KeypointModule, path) -> None:
    """Start from another run's weights (fine-tuning): the network only; optimiser, schedule and
    epoch count start afresh, unlike `resume_from`, which resumes a run where it stopped."""
    path = run_checkpoint(path)
    source = load_checkpoint(path)
    state = source.net.state_dict()
    if hasattr(module.net, "resized_state"):
        state = module.net.resized_state(state)  # e.g. model.input_size=160, or head=heatmap, from a 112 px regressor
    try:
        module.net.load_state_dict(state)
    except RuntimeError as e:
        raise KeypointsError(f"{path}: init_from= a network that does not fit this run's model "
                             f"({str(e).splitlines()[0]})") from None



def check_resumable(module: KeypointModule, state: dict, path) -> None:
    """resume_from= must hold this run's network, tensor for tensor: one line naming the first that
    differs now, before Lightning's traceback from load_state_dict after the data is set up."""
    own = module.state_dict()
    for key in sorted(own.keys() | state.keys()):
        if key not in own:
            detail = "in the checkpoint, not in this run's model"
        elif key not in state:
            detail = "in this run's model, not in the checkpoint"
        elif getattr(state[key], "shape", None) != own[key].shape:
            detail = f"{tuple(getattr(state[key], 'shape', ()))} in the checkpoint, {tuple(own[key].shape)} in this run's model"
        else:
            continue
        raise KeypointsError(f"{path}: resume_from= a run of another model ({key}: {detail}); give the same model= "
                             "as the run it resumes, or init_from= to start from its weights")

def train(cfg: DictConfig) -> dict:
    """Fit on train, select on val, then test the best checkpoint; returns and writes metrics.json."""
    if cfg.get("fine_tune") and not cfg.get("init_from"):  # set by experiments that only fine-tune
        raise KeypointsError("init_from is required by this experiment (fine_tune: true): init_from=<the checkpoint, or run folder, to fine-tune>")
    if cfg.get("resume_from") and not Path(cfg.resume_from).is_file():
        raise KeypointsError(f"{cfg.resume_from}: checkpoint not found (resume_from=... resumes from a .ckpt file)")
    resumed = read_checkpoint(cfg.resume_from) if cfg.get("resume_from") else None  # one line, and no code run, if it is not ours
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    sweep.prepare(cfg)
    datamodule = instantiate(cfg.data)
    module = build_module(cfg)
    if cfg.get("init_from"):
        init_weights(module, cfg.init_from)
    if resumed is not None:
        check_resumable(module, resumed["state_dict"], cfg.resume_from)
    if cfg.get("teacher"):
        module.set_teacher(load_checkpoint(run_checkpoint(cfg.teacher)))
    trainer = make_trainer(cfg.trainer, callbacks=instantiate_group(cfg.get("callbacks")),
                           logger=instantiate_group(cfg.get("logger")) or False)
    # Under DDP each process takes data.batch_size; gradients are averaged over all of them.
    effective_batch = cfg.data.batch_size * trainer.world_size * trainer.accumulate_grad_batches
    for logger in trainer.loggers:
        logger.log_hyperparams({**OmegaConf.to_container(cfg, resolve=True), "effective_batch_size": effective_batch})
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _fit_and_test(cfg, trainer, module, datamodule)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if any(isinstance(logger, WandbLogger) for logger in trainer.loggers):
            wandb.finish()  # a sweep's next job must start a fresh W&B run


def _interrupt(signum, frame) -> None:
    """SIGTERM (SLURM's time limit, `timeout`, CI) as Ctrl-C: Lightning stops the loop cleanly and
    _fit_and_test saves an `interrupted-...` checkpoint and exits non-zero."""
    raise KeyboardInterrupt(f"signal {signum}")


def _fit_and_test(cfg: DictConfig, trainer: L.Trainer, module: KeypointModule, datamodule) -> dict:
    output_dir = Path(cfg.paths.output_dir)

    start = time.perf_counter()
    with torch.serialization.safe_globals(SAFE_GLOBALS):  # Lightning reads checkpoints weights-only too
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("resume_from"), weights_only=True)
    fit_seconds = time.perf_counter() - start
    best_val = trainer.checkpoint_callback.best_model_score if trainer.checkpoint_callback else None
    best_ckpt = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""

    if trainer.interrupted:  # Lightning exits on Ctrl-C / SIGTERM; should it ever return, still no success
        raise KeypointsError(f"training interrupted at epoch {trainer.current_epoch}, step {trainer.global_step} "
                             "(callbacks.interrupt_checkpoint saved the run)")
    results = {"epochs": trainer.current_epoch, "fit_seconds": round(fit_seconds, 1),
               "best_val_nme": finite_or_none(best_val), "best_ckpt": best_ckpt}
    if cfg.test:
        # A weight-averaging run (callbacks.ema) saves the averaged weights as the checkpoint's state_dict, and
        # the callback would load the raw ones back over them on test: the checkpoint is tested as it is read.
        trainer.callbacks = [c for c in trainer.callbacks if not isinstance(c, WeightAveraging)]
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            (tested,) = trainer.test(module, datamodule=datamodule, ckpt_path=best_ckpt or None, weights_only=True)
        results["test"] = {key.removeprefix("test/"): finite_or_none(value) for key, value in tested.items()}
    if trainer.is_global_zero:
        output_dir.mkdir(parents=True, exist_ok=True)
        outputs.write_json(output_dir / "metrics.json", results, indent=2)
    return results


def finite_or_none(value) -> float | None:
    """A metric for metrics.json: JSON has no NaN, so a non-finite value is written as null."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
