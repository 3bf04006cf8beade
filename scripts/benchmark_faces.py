"""Faces found by each face stage on turned copies of photos: `python scripts/benchmark_faces.py`."""

import hydra
from omegaconf import DictConfig

from keypoints.benchmarks.faces import turned_faces_table
from keypoints.cli import friendly_errors
from keypoints import benchmarks


@hydra.main(version_base="1.3", config_path="../conf", config_name="benchmark_faces")
@friendly_errors(rules=(benchmarks.RULES,))
def main(cfg: DictConfig) -> None:
    print(turned_faces_table(cfg.photos, list(cfg.stages), list(cfg.angles)))


if __name__ == "__main__":
    main()
