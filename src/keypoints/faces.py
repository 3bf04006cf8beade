"""Face boxes: OpenCV's Haar cascade, and how its boxes sit on the training data's faces."""

from pathlib import Path

import cv2
import numpy as np

from keypoints.errors import KeypointsError
from keypoints.io import read_image


class FaceDetector:
    """OpenCV's Haar cascade. It runs on a copy whose longest side is at most `max_side` and ignores
    faces smaller than `min_size` px or `min_size_fraction` of the shorter side: on a full-size
    3648 px photo it also "finds" faces in drums and shirts.

    The frontal cascade finds faces up to about 15 degrees of roll; `angles` also searches copies
    turned by those degrees (each costs one more cascade pass), so heads tilted by 20-40 degrees are
    found too. A face found at several angles is kept once, at its most confident. Turned copies
    need `turned_min_neighbors` (the_beatles.jpg gains a false face in its drums at 5, none at 7).
    """

    def __init__(self, cascade: str = "haarcascade_frontalface_default.xml", scale_factor: float = 1.1,
                 min_neighbors: int = 5, min_size: int = 30, min_size_fraction: float = 0.05, max_side: int = 1000,
                 angles: tuple[float, ...] = (0.0, -25.0, 25.0), turned_min_neighbors: int = 7):
        path = Path(cascade) if Path(cascade).is_file() else Path(cv2.data.haarcascades) / cascade
        self.classifier = cv2.CascadeClassifier(str(path))
        if self.classifier.empty():
            raise KeypointsError(f"{cascade}: not a Haar cascade (detector.cascade=a file in {cv2.data.haarcascades} or a path)")
        self.scale_factor, self.min_neighbors = scale_factor, min_neighbors
        self.min_size, self.min_size_fraction, self.max_side = min_size, min_size_fraction, max_side
        self.angles, self.turned_min_neighbors = tuple(angles), turned_min_neighbors

    def __call__(self, image: np.ndarray) -> list[tuple[tuple[int, int, int, int], float]]:
        """BGR image -> [(box, score)], left to right, boxes in the image's pixels."""
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        f = min(1.0, self.max_side / max(gray.shape))
        if f < 1.0:
            gray = cv2.resize(gray, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
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
            boxes.append(((x, y, min(round(w), width - x), min(round(w), height - y)), score))
        return sorted(boxes, key=lambda found_box: found_box[0][0])

    def _detect(self, gray: np.ndarray, angle: float, side: int) -> list[tuple[np.ndarray, float, float]]:
        """Faces in `gray` turned by `angle` degrees (on a canvas that keeps every corner), as
        (centre in `gray`'s pixels, side, score)."""
        to_turned = np.eye(2, 3)
        if angle:
            h, w = gray.shape
            to_turned = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
            c, s = abs(to_turned[0, 0]), abs(to_turned[0, 1])
            size = (round(w * c + h * s), round(w * s + h * c))
            to_turned[:, 2] += (np.array(size) - (w, h)) / 2
            gray = cv2.warpAffine(gray, to_turned, size, borderMode=cv2.BORDER_REPLICATE)
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


def measure_framing(root, n: int = 300, seed: int = 0, faces: FaceDetector | None = None) -> dict:
    """Medians over `n` random training frames of how each frame (and its keypoints' bounding box)
    sits around the Haar box of its labelled face, in box sides: where `framing` comes from.

    python -c "from keypoints.faces import measure_framing as m; print(m('../shared/data/facial-keypoints'))"
    """
    from keypoints.data import read_annotations

    faces, root = faces or FaceDetector(angles=(0.0,)), Path(root)  # upright: how the figures were measured
    names, points = read_annotations(root / "training_frames_keypoints.csv")
    ratios = []
    for i in np.random.default_rng(seed).choice(len(names), min(n, len(names)), replace=False):
        image = read_image(root / "training" / names[i])
        low, high = points[i].min(axis=0), points[i].max(axis=0)
        found = [box for box, _ in faces(image)]
        if not found:
            continue
        # the box whose centre is nearest the keypoints' centre is the labelled face
        x, y, w, h = min(found, key=lambda b: np.hypot(*(np.array(b[:2]) + np.array(b[2:]) / 2 - (low + high) / 2)))
        centre, (fh, fw) = np.array([x + w / 2, y + h / 2]), image.shape[:2]
        side = (high - low).max()
        ratios.append([fw / w, fh / w, np.sqrt(fw * fh) / w, *((np.array([fw, fh]) / 2 - centre) / w),
                       side / w, *(((low + high) / 2 - centre) / w)])
    ratios = np.array(ratios)
    keys = ["frame_w", "frame_h", "scale", "shift_x", "shift_y", "keypoints_side", "keypoints_shift_x",
            "keypoints_shift_y"]
    median = np.median(ratios, axis=0)
    # How far a Haar box's guess of the keypoint box is off, in keypoint-box sides: the jitter that
    # face-crop training (conf/data/face.yaml) has to cover.
    spread = {"keypoints_side_log_std": np.log(ratios[:, 5] / median[5]).std(),
              "keypoints_shift_x_std": ((ratios[:, 6] - median[6]) / ratios[:, 5]).std(),
              "keypoints_shift_y_std": ((ratios[:, 7] - median[7]) / ratios[:, 5]).std()}
    return {"found": round(len(ratios) / min(n, len(names)), 3),
            **{k: round(float(v), 3) for k, v in zip(keys, median)},
            **{k: round(float(v), 3) for k, v in spread.items()}}
