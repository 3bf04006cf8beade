"""Faces found by each face stage on turned copies of photos, and by YuNet's settings on folders of
photos: `python scripts/benchmark_faces.py` (parts=[settings] for the second)."""

import hydra
from omegaconf import DictConfig, OmegaConf

from keypoints.benchmarks.faces import settings_table, turned_faces_table
from keypoints.commands.cli import friendly_errors
from keypoints.commands import hydra_script
from keypoints import benchmarks


@hydra_script  # Hydra's own errors in one line, as the keypoints commands give them
@hydra.main(version_base="1.3", config_path="../conf", config_name="benchmark_faces")
@friendly_errors(rules=(benchmarks.RULES,))
def main(cfg: DictConfig) -> None:
    if "turned" in cfg.parts:
        print(turned_faces_table(cfg.photos, list(cfg.stages), list(cfg.angles)))
    if "settings" in cfg.parts:
        print(settings_table(OmegaConf.to_container(cfg.sets, resolve=True), OmegaConf.to_container(cfg.settings, resolve=True)))


if __name__ == "__main__":
    main()
