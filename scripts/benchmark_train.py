"""Images/s of the framework's training step vs a bare PyTorch loop, same model, batch and data.

python scripts/benchmark_train.py model=alexnet [trainer.precision=bf16-mixed] [model.channels_last=false]
"""

import json
from pathlib import Path

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from keypoints.cli import friendly_errors
from keypoints.benchmarks.throughput import StepTimer, bare_loop_seconds
from keypoints.training import build_module, instantiate_group, make_trainer


@hydra.main(version_base="1.3", config_path="../conf", config_name="benchmark_train")
@friendly_errors
def main(cfg: DictConfig) -> None:
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
              "batch_size": batch_size, "threads": torch.get_num_threads(), "framework_img_s": round(framework, 1),
              "bare_img_s": round(bare, 1), "framework_share": round(framework / bare, 3)}
    print(json.dumps(result, indent=2))
    Path(cfg.paths.output_dir, "throughput.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
