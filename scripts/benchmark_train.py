"""Images/s of the framework's training step vs a bare PyTorch loop, same model, batch and data.

python scripts/benchmark_train.py model=alexnet [trainer.precision=bf16-mixed] [model.channels_last=false]
"""

import hydra
from omegaconf import DictConfig

from keypoints.benchmarks.throughput import benchmark_train
from keypoints.commands.cli import friendly_errors
from keypoints.commands import hydra_script
from keypoints import benchmarks, training


@hydra_script  # Hydra's own errors in one line, as the keypoints commands give them
@hydra.main(version_base="1.3", config_path="../conf", config_name="benchmark_train")
@friendly_errors(rules=(training.RULES, benchmarks.RULES))
def main(cfg: DictConfig) -> None:
    benchmark_train(cfg)


if __name__ == "__main__":
    main()
