"""Faces found by each face stage on turned copies of photos: `python scripts/benchmark_faces.py`.

A face of the upright photo counts as found in a turned copy when a returned box holds its turned
centre; extra boxes are counted apart (false faces, or faces the upright search missed).
"""

import hydra
import numpy as np
from omegaconf import DictConfig

from keypoints import geometry
from keypoints.cli import friendly_errors
from keypoints.faces import load_faces
from keypoints.io import read_image
from keypoints.runner import folder_files
from keypoints import tables


@hydra.main(version_base="1.3", config_path="../conf", config_name="benchmark_faces")
@friendly_errors
def main(cfg: DictConfig) -> None:
    stages = {name: load_faces(name) for name in cfg.stages}
    reference = stages[cfg.stages[0]]
    header = ["photo", f"faces (upright, {cfg.stages[0]})", *(f"{name} at {a:+g}°" for name in cfg.stages for a in cfg.angles)]
    rows = []
    for path in folder_files(cfg.photos):
        photo = read_image(path)
        centres = np.array([[x + w / 2, y + h / 2] for x, y, w, h in (f.box for f in reference(photo))]).reshape(-1, 2)
        cells = []
        for name, stage in stages.items():
            for angle in cfg.angles:
                image, turn = geometry.turned(photo, angle)
                boxes = [f.box for f in stage(image)]
                found = sum(any(x <= cx <= x + w and y <= cy <= y + h for x, y, w, h in boxes)
                            for cx, cy in geometry.apply(turn, centres))
                extra = len(boxes) - found
                cells.append(f"{found}/{len(centres)}" + (f" (+{extra})" if extra > 0 else ""))
        rows.append([path.name, len(centres), *cells])
    print(tables.markdown(header, rows))


if __name__ == "__main__":
    main()
