"""The seed's face stage: OpenCV's Haar cascade (OpenCV 4 only: OpenCV 5 removed cv2.CascadeClassifier)."""

from pathlib import Path

import cv2
import numpy as np

from keypoints.core import geometry
from keypoints.core.errors import KeypointsError
from keypoints.inference.faces import FoundFace
from keypoints.core.io import shrink


class HaarCascade:
    """OpenCV's Haar cascade. It runs on a copy whose longest side is at most `max_side` and ignores
    faces smaller than `min_size` px or `min_size_fraction` of the shorter side: on a full-size
    3648 px photo it also "finds" faces in drums and shirts.

    The frontal cascade finds faces up to about 15 degrees of roll; `angles` also searches copies
    turned by those degrees (each costs one more cascade pass), so heads tilted by 20-40 degrees are
    found too. A face found at several angles is kept once, at its most confident. Turned copies
    need `turned_min_neighbors` (the_beatles.jpg gains a false face in its drums at 5, none at 7).
    `keypoint_box` and `framing` say how its boxes sit on the training data's faces; every default
    and check is in keypoints.inference.faces.config.HaarFaces. Faces carry no roll (the cascade does not tell it).
    """
    align_roll = False  # no roll to turn the first crop by (keypoints.inference.faces.FaceStage)
    max_nose_offset = None
    thread_safe = False  # one cascade object, not documented as safe to share between threads

    def use_threads(self, threads: int | None) -> None:
        """OpenCV's own thread pool runs the cascade (cv2.setNumThreads, process-wide): left as it is."""

    def __init__(self, cascade: str, scale_factor: float, min_neighbors: int, min_size: int, min_size_fraction: float,
                 max_side: int, angles: list[float], turned_min_neighbors: int, keypoint_box: dict, framing: dict,
                 min_score: float | None):
        if not hasattr(cv2, "CascadeClassifier"):
            raise KeypointsError(f"detector=haar needs OpenCV 4 (OpenCV {cv2.__version__} has no Haar cascades): "
                                 "pip install 'keypoints[haar]', or use detector=yunet")
        path = Path(cascade) if Path(cascade).is_file() else Path(cv2.data.haarcascades) / cascade
        self.classifier = cv2.CascadeClassifier(str(path))
        if self.classifier.empty():
            raise KeypointsError(f"{cascade}: not a Haar cascade (detector.faces.cascade=a file in {cv2.data.haarcascades} or a path)")
        self.min_score = min_score
        self.scale_factor, self.min_neighbors = scale_factor, min_neighbors
        self.min_size, self.min_size_fraction, self.max_side = min_size, min_size_fraction, max_side
        self.angles, self.turned_min_neighbors = tuple(angles), turned_min_neighbors
        self.keypoint_box, self.framing = dict(keypoint_box), dict(framing)

    def __call__(self, image: np.ndarray) -> list[FoundFace]:
        """BGR image -> faces, left to right, boxes in the image's pixels."""
        gray, f = shrink(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), self.max_side)
        side = max(self.min_size, round(self.min_size_fraction * min(gray.shape)))
        if min(gray.shape) < side:
            return []
        found = [hit for angle in self.angles for hit in self._detect(gray, angle, side)]  # (centre, side, score)
        kept = []
        for centre, w, score in sorted(found, key=lambda hit: -hit[2]):
            if all(np.hypot(*(centre - c)) > 0.5 * max(w, kw) for c, kw, _ in kept):
                kept.append((centre, w, score))
        height, width = image.shape[:2]
        boxes = []
        for centre, w, score in kept:  # back to full size; rounding and clipping stay inside the photo
            (cx, cy), w = centre / f, w / f
            x, y = max(0, round(cx - w / 2)), max(0, round(cy - w / 2))
            if self.min_score is None or score >= self.min_score:
                boxes.append(FoundFace((x, y, min(round(w), width - x), min(round(w), height - y)), score))
        return sorted(boxes, key=lambda face: face.box[0])

    def _detect(self, gray: np.ndarray, angle: float, side: int) -> list[tuple[np.ndarray, float, float]]:
        """Faces in `gray` turned by `angle` degrees (on a canvas that keeps every corner), as
        (centre in `gray`'s pixels, side, score)."""
        to_turned = np.eye(2, 3)
        if angle:
            gray, to_turned = geometry.turned(gray, angle)
        # outputRejectLevels gives each box a confidence (the same boxes as detectMultiScale).
        neighbours = self.turned_min_neighbors if angle else self.min_neighbors
        boxes, _, weights = self.classifier.detectMultiScale3(
            gray, self.scale_factor, neighbours, minSize=(side, side), outputRejectLevels=True)
        back = cv2.invertAffineTransform(to_turned)
        hits = []
        for (x, y, w, h), weight in zip(np.asarray(boxes).reshape(-1, 4), np.ravel(weights)):
            centre = back[:, :2] @ np.array([x + w / 2, y + h / 2]) + back[:, 2]
            hits.append((centre, float(w), float(weight)))
        return hits
