"""Training throughput: the framework's full step against a bare PyTorch loop on the same model."""

import json
import time
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from keypoints.training.loop import build_module, instantiate_group, make_trainer
from keypoints.training.module import KeypointModule
from keypoints.core import outputs


class StepTimer(L.Callback):
    """Wall time of the training batches after `warmup`: data loading, Lightning's loop and logging."""

    def __init__(self, warmup: int):
        self.warmup, self.start, self.seconds, self.batches = warmup, None, 0.0, 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.warmup:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.start is not None:
            self.seconds, self.batches = time.perf_counter() - self.start, self.batches + 1


def bare_loop_seconds(module: KeypointModule, batches: list[dict], steps: int, warmup: int, bf16: bool) -> float:
    """Forward, loss, backward and optimiser step on batches already in memory: nothing else."""
    optimizer = module.configure_optimizers()
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    device = next(module.parameters()).device
    module.train()
    for i in range(warmup + steps):
        if i == warmup:
            start = time.perf_counter()
        batch = batches[i % len(batches)]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = module.loss(module(batch["image"]), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def benchmark_train(cfg: DictConfig) -> dict:
    """Both loops on `cfg.data`'s first batches (scripts/benchmark_train.py): prints and writes
    `throughput.json` (img/s to one decimal) into `cfg.paths.output_dir`; returns the unrounded figures."""
    torch.manual_seed(0)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    batch_size, bf16 = cfg.data.batch_size, str(cfg.trainer.precision).startswith("bf16")

    timer = StepTimer(cfg.warmup)
    trainer = make_trainer(cfg.trainer, max_epochs=-1, max_steps=cfg.warmup + cfg.steps, limit_val_batches=0,
                           enable_checkpointing=False, callbacks=[timer], logger=instantiate_group(cfg.get("logger")) or False)
    trainer.fit(build_module(cfg), datamodule=datamodule)
    framework = timer.batches * batch_size / timer.seconds

    module = build_module(cfg).to(trainer.strategy.root_device)
    device = trainer.strategy.root_device
    batches = [{k: v.to(device) for k, v in b.items()} for _, b in zip(range(8), datamodule.train_dataloader())]
    bare = cfg.steps * batch_size / bare_loop_seconds(module, batches, cfg.steps, cfg.warmup, bf16)

    result = {"model": cfg.model.name, "precision": str(cfg.trainer.precision), "channels_last": cfg.model.channels_last,
              "batch_size": batch_size, "threads": torch.get_num_threads(), "framework_img_s": framework,
              "bare_img_s": bare, "framework_share": framework / bare}
    shown = {**result, "framework_img_s": round(framework, 1), "bare_img_s": round(bare, 1),
             "framework_share": round(framework / bare, 3)}  # the share from the unrounded speeds
    print(json.dumps(shown, indent=2))
    outputs.write_json(Path(cfg.paths.output_dir, "throughput.json"), shown, indent=2, allow_nan=True)
    return result
