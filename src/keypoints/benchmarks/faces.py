"""Faces found by each face stage on turned copies of photos (scripts/benchmark_faces.py).

A face of the upright photo counts as found in a turned copy when a returned box holds its turned
centre; extra boxes are counted apart (false faces, or faces the upright search missed).
"""

import numpy as np

from keypoints import geometry, tables
from keypoints.faces import load_faces
from keypoints.io import read_image
from keypoints.runner import folder_files


def turned_faces_table(photos, stages: list[str], angles: list[float]) -> str:
    """A markdown table: per photo, the faces the first stage finds upright, then `found/total (+extra)`
    for each stage at each angle."""
    found_by = {name: load_faces(name) for name in stages}
    reference = found_by[stages[0]]
    header = ["photo", f"faces (upright, {stages[0]})", *(f"{name} at {a:+g}°" for name in stages for a in angles)]
    rows = []
    for path in folder_files(photos):
        photo = read_image(path)
        centres = np.array([[x + w / 2, y + h / 2] for x, y, w, h in (f.box for f in reference(photo))]).reshape(-1, 2)
        cells = []
        for stage in found_by.values():
            for angle in angles:
                image, turn = geometry.turned(photo, angle)
                boxes = [f.box for f in stage(image)]
                found = sum(any(x <= cx <= x + w and y <= cy <= y + h for x, y, w, h in boxes)
                            for cx, cy in geometry.apply(turn, centres))
                extra = len(boxes) - found
                cells.append(f"{found}/{len(centres)}" + (f" (+{extra})" if extra > 0 else ""))
        rows.append([path.name, len(centres), *cells])
    return tables.markdown(header, rows)
