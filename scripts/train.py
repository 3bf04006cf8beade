"""Train a landmark model: `python scripts/train.py model=alexnet trainer.max_epochs=30`.

A checkout's job, not an installed command: it composes conf/train.yaml and its groups, which are
not in the package (the `keypoints` command runs detect, filter, serve, export and benchmark).
"""

import hydra
from omegaconf import DictConfig

from keypoints.commands.cli import friendly_errors
from keypoints.commands import hydra_script
from keypoints import training
from keypoints.training.loop import train


@hydra_script  # Hydra's own errors in one line, as the keypoints commands give them
@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
@friendly_errors(rules=(training.RULES,))
def main(cfg: DictConfig) -> float | None:
    results = train(cfg)
    return results["best_val_nme"]  # the objective a Hydra sweeper (e.g. Optuna) minimises


if __name__ == "__main__":
    main()
