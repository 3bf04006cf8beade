"""The labels' layout on disk: the Udacity CSV (file name, then x0, y0, ..., x67, y67 in the photo's
pixels; pseudo-labels add `confidence` and w0..w67) and the data root's splits. Plain CSV and
NumPy, no torch: the `benchmark` command reads labelled sets with it in the lean install."""

import csv
import io
import math
from pathlib import Path, PurePosixPath

import numpy as np

from keypoints.core.errors import KeypointsError

NUM_POINTS = 68
# The public download's layout: split -> (image folder, CSV) under the data root
SPLITS = {"train": ("training", "training_frames_keypoints.csv"), "test": ("test", "test_frames_keypoints.csv")}


def read_annotations(csv_path: Path, with_confidence: bool = False):
    """File names and (N, 68, 2) float32 keypoints; any malformed row stops with its row number.
    `with_confidence`: also (N,) per-face confidences and (N, 68) per-point weights, from the
    `confidence` and `w0`..`w67` columns that scripts/pseudo_label.py writes after the coordinates
    (a hand-labelled CSV: 1 for every face and point)."""
    if not csv_path.is_file():
        raise KeypointsError(f"{csv_path}: annotation CSV not found (set paths.data_dir or KEYPOINTS_DATA, or run `make data`)")
    names, points, confidences, weights = [], [], [], []
    try:
        data = csv_path.read_bytes()
    except OSError as e:
        raise KeypointsError(f"{csv_path}: annotation CSV cannot be read ({e.strerror or e})") from None
    try:
        text = data.decode("utf-8-sig")  # a BOM from a spreadsheet's "CSV UTF-8" is not part of the first name
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise KeypointsError(f"{csv_path}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x}); save the CSV as UTF-8") from None
    rows = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(rows, None) or []  # ",0,1,...,135" (and ",confidence" and ",w0,...,w67")
        extra = header[1 + 2 * NUM_POINTS:]
        if extra not in ([], ["confidence"], ["confidence"] + [f"w{i}" for i in range(NUM_POINTS)]):
            raise KeypointsError(f"{csv_path}:1: after the 136 coordinates expected nothing, `confidence`, or `confidence` "
                                 f"and w0..w67; got {', '.join(extra[:3])}{', ...' if len(extra) > 3 else ''}")
        columns = 1 + 2 * NUM_POINTS + len(extra)
        for line, row in enumerate(rows, start=2):
            if len(row) != columns:
                raise KeypointsError(f"{csv_path}:{line}: expected {columns} columns (file name + 136 coordinates"
                                     f"{' + ' + ', '.join(extra[:2]) + ('...' if len(extra) > 2 else '') if extra else ''}), got {len(row)}")
            name = PurePosixPath(row[0].replace("\\", "/"))
            if not row[0].strip() or name.is_absolute() or ".." in name.parts:  # names are relative to the split's image folder
                raise KeypointsError(f"{csv_path}:{line}: file name {row[0]!r} is {'empty' if not row[0].strip() else 'not inside the image folder'}")
            try:
                values = [float(v) for v in row[1:]]
            except ValueError as e:
                raise KeypointsError(f"{csv_path}:{line}: non-numeric value ({e})") from None
            if not all(math.isfinite(v) for v in values):
                raise KeypointsError(f"{csv_path}:{line}: NaN or infinite value for {row[0]}")
            problem = degenerate(np.asarray(values[: 2 * NUM_POINTS], np.float32).reshape(NUM_POINTS, 2))
            if problem:
                raise KeypointsError(f"{csv_path}:{line}: {row[0]}: {problem}; fix or remove the row")
            if any(not 0.0 <= v <= 1.0 for v in values[2 * NUM_POINTS:]):
                raise KeypointsError(f"{csv_path}:{line}: {row[0]}: confidence and point weights must be within 0-1")
            names.append(row[0])
            points.append(values[: 2 * NUM_POINTS])
            confidences.append(values[2 * NUM_POINTS] if extra else 1.0)
            weights.append(values[2 * NUM_POINTS + 1:] if len(extra) > 1 else [1.0] * NUM_POINTS)
    except csv.Error as e:  # a field above csv's size limit, a NUL byte, ...
        raise KeypointsError(f"{csv_path}:{rows.line_num}: not a CSV row ({e})") from None
    if not names:
        raise KeypointsError(f"{csv_path}: no annotated rows")
    points = np.asarray(points, np.float32).reshape(-1, NUM_POINTS, 2)
    if not with_confidence:
        return names, points
    return names, points, np.asarray(confidences, np.float32), np.asarray(weights, np.float32)


def degenerate(points: np.ndarray) -> str | None:
    """Why a (68, 2) label cannot be a face (all zeros, a "missing" marker; collapsed points; eye
    corners on top of each other, which NME divides by), or None."""
    if not points.any():
        return "all 136 coordinates are 0 (a 'missing' marker?)"
    span = points.max(axis=0) - points.min(axis=0)
    if span.min() < 2:
        return f"the 68 points span {span[0]:g} x {span[1]:g} px: not a face"
    if np.linalg.norm(points[36] - points[45]) < 1:
        return "outer eye corners (points 36, 45) coincide: NME is undefined"
    return None


def outside(points: np.ndarray, image: np.ndarray, margin: float = 0.1) -> str | None:
    """Why labels do not fit their image (points beyond it by more than `margin` of its size), or None."""
    h, w = image.shape[:2]
    low, high = points.min(axis=0), points.max(axis=0)
    if (low < -margin * np.array([w, h])).any() or (high > (1 + margin) * np.array([w, h])).any():
        return f"keypoints span ({low[0]:g}, {low[1]:g})-({high[0]:g}, {high[1]:g}), outside the {w}x{h} image"
    return None
