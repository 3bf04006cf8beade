"""Overlays on faces: `keypoints filter input=PATH output=DIR overlay=sunglasses ckpt_path=CKPT`."""

import hydra
from omegaconf import DictConfig

from keypoints.inference import filters, runner
from keypoints.commands.cli import friendly_errors
from keypoints.detect import load_detector
from keypoints.core.errors import KeypointsError
from keypoints.inference.video import RULES as VIDEO_RULES


@hydra.main(version_base="1.3", config_path="pkg://keypoints.conf", config_name="filter")
@friendly_errors(rules=(runner.RULES, VIDEO_RULES))
def main(cfg: DictConfig) -> None:
    """Faces found in every image of `cfg.input`, the overlay placed on each: `<stem>.png` (no JSON)."""
    overlay, kind = filters.load_overlay(cfg.overlay, cfg.overlay_dir, cfg.get("kind"), dict(cfg.overlay_files))
    placements = {k: dict(v) for k, v in cfg.placements.items()}
    if kind not in placements:
        raise KeypointsError(f"kind={kind}: unknown; choose one of {', '.join(placements)}")
    runner.detect_inputs(cfg, lambda image, faces: filters.apply(image, faces, overlay, kind, placements), load_detector,
                         write_json=False)
