"""The Udacity / YouTube Faces CSV format: file name, then x0,y0,...,x67,y67 in pixels."""

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from keypoints.core import geometry
from keypoints.inference.framing import FaceFrame
from keypoints.training.data.transforms import to_chw
from keypoints.core.annotations import NUM_POINTS, outside
from keypoints.core.errors import KeypointsError
from keypoints.core.io import read_image
from keypoints.core.landmarks import FLIP

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
