"""Faces and 68 keypoints: `keypoints detect input=PATH output=DIR ckpt_path=CKPT`."""

import hydra
from omegaconf import DictConfig

from keypoints.core import drawing
from keypoints.inference import runner
from keypoints.commands.cli import friendly_errors
from keypoints.detect import load_detector
from keypoints.inference.video import RULES as VIDEO_RULES


@hydra.main(version_base="1.3", config_path="pkg://keypoints.conf", config_name="detect")
@friendly_errors(rules=(runner.RULES, VIDEO_RULES, runner.ENGINE_RULES))
def main(cfg: DictConfig) -> None:
    if cfg.engine.name == "ray":  # the `scale` extra, imported only for it
        from keypoints.scale import engine

        engine.run(cfg)
        return
    runner.detect_inputs(cfg, render=lambda image, faces: drawing.draw_faces(image, faces, pose=cfg.draw_pose),
                         load_detector=load_detector)
