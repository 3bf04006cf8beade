"""Faces and 68 keypoints: `keypoints detect input=PATH output=DIR ckpt_path=CKPT`."""

import hydra
from omegaconf import DictConfig

from keypoints import drawing, runner
from keypoints.cli import friendly_errors
from keypoints.video import RULES as VIDEO_RULES


@hydra.main(version_base="1.3", config_path="pkg://keypoints.conf", config_name="detect")
@friendly_errors(rules=(runner.RULES, VIDEO_RULES))
def main(cfg: DictConfig) -> None:
    runner.detect_inputs(cfg, render=lambda image, faces: drawing.draw_faces(image, faces, pose=cfg.draw_pose))
