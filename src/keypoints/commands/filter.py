"""Overlays on faces: `keypoints filter input=PATH output=DIR overlay=sunglasses ckpt_path=CKPT`."""

import hydra
from omegaconf import DictConfig

from keypoints import filters, runner
from keypoints.cli import friendly_errors
from keypoints.video import RULES as VIDEO_RULES


@hydra.main(version_base="1.3", config_path="pkg://keypoints.conf", config_name="filter")
@friendly_errors(rules=(runner.RULES, VIDEO_RULES))
def main(cfg: DictConfig) -> None:
    filters.filter_inputs(cfg)
