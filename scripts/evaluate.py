"""Test a checkpoint on the test split: `python scripts/evaluate.py ckpt_path=...`; writes metrics.json."""

import json

import hydra
from omegaconf import DictConfig

from keypoints.commands.cli import friendly_errors
from keypoints.commands import hydra_script
from keypoints import training
from keypoints.training.evaluation import evaluate


@hydra_script  # Hydra's own errors in one line, as the keypoints commands give them
@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
@friendly_errors(rules=(training.RULES,))
def main(cfg: DictConfig) -> None:
    metrics = evaluate(cfg)
    if metrics is not None:
        print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
