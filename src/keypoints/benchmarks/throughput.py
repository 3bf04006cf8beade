"""Training throughput: the framework's full step against a bare PyTorch loop on the same model."""

import time

import lightning as L
import torch

from keypoints.training.module import KeypointModule


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
