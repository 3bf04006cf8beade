"""The Udacity / YouTube Faces CSV format: file name, then x0,y0,...,x67,y67 in pixels."""

import csv
import math
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from keypoints import geometry
from keypoints.data.framing import FaceFrame
from keypoints.data.transforms import to_chw
from keypoints.errors import KeypointsError
from keypoints.io import read_image
from keypoints.landmarks import FLIP

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
    with open(csv_path, newline="") as f:
        rows = csv.reader(f)
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


class KeypointsDataset(Dataset):
    """Faces with their 68 keypoints; images decoded once and kept in memory.

    Each item: `image` (C, S, S) float in [0, 1], `keypoints` (68, 2) normalised to the input
    (geometry.normalize), `keypoints_px` (68, 2) in original pixels, `from_input` (2, 3), the affine from
    network-input pixels back to the original image, and `weights` (68,), each point's weight in the loss.
    """

    def __init__(self, image_dir: Path, names: list[str], points: np.ndarray, transform, input_size: int,
                 frame: FaceFrame | None = None, weights: np.ndarray | None = None):
        """`frame`: cut each face out of its frame first (face-crop models); None: the whole frame.
        `weights`: (N, 68) how much each point counts in the loss (a teacher's labels: 0 where it may
        not teach); None: every point fully."""
        self.image_dir, self.names, self.points = Path(image_dir), names, points
        self.weights = np.ones(points.shape[:2], np.float32) if weights is None else np.asarray(weights, np.float32)
        self.transform, self.input_size, self.frame = transform, input_size, frame
        # Decoding up front surfaces a bad file before training starts, and worker processes forked
        # afterwards share these arrays instead of re-decoding every epoch.
        self.images = [read_image(self.image_dir / name, upright=False) for name in names]
        for name, image, p in zip(names, self.images, points):
            problem = outside(p, image)
            if problem:
                raise KeypointsError(f"{self.image_dir / name}: its label row's {problem}; fix or remove the row")

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> dict:
        image, points = self.images[i], self.points[i]
        to_frame = np.eye(2, 3)
        if self.frame is not None:  # the same warp the detector makes, so training matches inference
            to_frame = self.frame(points)
            image = geometry.crop(image, to_frame, self.input_size)
        h, w = image.shape[:2]
        # Image corners ride along as three extra keypoints to recover the affine (see geometry).
        framed = geometry.apply(to_frame, points).astype(np.float32)
        moved = self.transform(image=image, keypoints=np.concatenate([framed, geometry.probes((w, h))]))
        out_points = np.asarray(moved["keypoints"], np.float32)
        to_input = geometry.compose(geometry.affine_from_probes((w, h), out_points[NUM_POINTS:]), to_frame)
        target, truth, weights = out_points[:NUM_POINTS], points, self.weights[i]
        if np.linalg.det(to_input[:, :2]) < 0:  # a mirror image: its left eye is the original's right
            target, truth, weights = target[FLIP], points[FLIP], weights[FLIP]
        return {
            "image": torch.from_numpy(to_chw(moved["image"])),
            "keypoints": torch.from_numpy(geometry.normalize(target, self.input_size)),
            "keypoints_px": torch.from_numpy(np.ascontiguousarray(truth)),
            "from_input": torch.from_numpy(geometry.invert(to_input).astype(np.float32)),
            "weights": torch.from_numpy(np.ascontiguousarray(weights)),
        }
