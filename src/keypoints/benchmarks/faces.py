"""Faces found by face stages (scripts/benchmark_faces.py): each stage on turned copies of photos,
and YuNet's settings against one another on folders of photos.

Turned: a face of the upright photo counts as found in a turned copy when a returned box holds its
turned centre; extra boxes are counted apart (false faces, or faces the upright search missed).
Settings: a face counts as lost when no box of the other setting overlaps it by IoU > 0.3, and new
the other way round.
"""

import time
from pathlib import Path

import numpy as np

from keypoints.core import geometry, tables
from keypoints.core.errors import KeypointsError
from keypoints.inference.faces import load_faces
from keypoints.core.io import images_under, read_image
from keypoints.inference.runner import folder_files

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


def set_photos(folder, step: int = 1, limit: int | None = None) -> list[Path]:
    """Every `step`-th image of a folder and of its subfolders (LFW keeps a folder per person), sorted
    by path, at most `limit`."""
    files = images_under(folder)
    if not files:
        raise KeypointsError(f"{folder}: no photos (sets.<name>.folder=a folder of images)")
    return files[::step][:limit]


def settings_table(sets: dict, settings: list[dict]) -> str:
    """A markdown table: per YuNet setting (overrides of keypoints.inference.faces.config.YuNetFaces) and photo
    set, the faces found, how many of the first setting's it lost and found anew, and the face stage's
    ms a photo (one pass, photos decoded beforehand)."""
    stages = [load_faces("yunet", **setting) for setting in settings]  # a wrong key or value: one line, before any work
    header = ["setting", *(f"{name}: faces (lost / new), ms" for name in sets)]
    cells = [[] for _ in settings]
    for name, spec in sets.items():
        photos = [read_image(p) for p in set_photos(**spec)]
        reference = None
        for row, stage in zip(cells, stages):
            stage(photos[0])  # warm-up
            start = time.perf_counter()
            found = [stage(photo) for photo in photos]
            ms = 1000 * (time.perf_counter() - start) / len(photos)
            reference = reference or found
            lost = sum(not any(geometry.box_iou(f.box, g.box) > 0.3 for g in mine) for ref, mine in zip(reference, found) for f in ref)
            new = sum(not any(geometry.box_iou(g.box, f.box) > 0.3 for f in ref) for ref, mine in zip(reference, found) for g in mine)
            row.append(f"{sum(map(len, found)):,} ({lost} / {new}), {ms:.2f}")
        print(f"settings: {name} ({len(photos)} photos) done", flush=True)
    names = [", ".join(f"{k}={'null' if v is None else v}" for k, v in setting.items()) or "the default" for setting in settings]
    return tables.markdown(header, [[n, *row] for n, row in zip(names, cells)])
