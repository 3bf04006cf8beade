"""Training samples, predictions and conv1 filters as PNGs: `python scripts/visualize.py ckpt_path=CKPT`."""

import hydra
from omegaconf import DictConfig

from keypoints.training.plots import write_plots
from keypoints.commands.cli import friendly_errors
from keypoints.commands import hydra_script
from keypoints.training.viz import RULES as VIZ_RULES


@hydra_script  # Hydra's own errors in one line, as the keypoints commands give them
@hydra.main(version_base="1.3", config_path="../conf", config_name="visualize")
@friendly_errors(rules=(VIZ_RULES,))
def main(cfg: DictConfig) -> None:
    write_plots(cfg)


if __name__ == "__main__":
    main()
