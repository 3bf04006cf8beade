"""YuNet: a small CNN face detector (Apache-2.0, shipped in keypoints/faces/yunet/) run by OpenCV's
cv2.FaceDetectorYN, which decodes its outputs and applies non-maximum suppression.

Besides a box and a score it gives 5 points per face: the line through the eyes tells the face's
roll, so the keypoint model's first crop can be turned upright and tilted heads need no extra
turned searches. It runs on a copy of the photo no longer than `max_side`.
"""

from pathlib import Path

import cv2
import numpy as np

from keypoints.errors import KeypointsError
from keypoints.checks import is_number
from keypoints.faces import FoundFace, check_knob
from keypoints.io import shrink
from keypoints.landmarks import offset_beside_eyes

SHIPPED = Path(__file__).parent / "yunet" / "yunet_n_640_640.onnx"


class YuNet:
    """`model`: an ONNX file (None: the shipped one); `min_score`: faces below this YuNet score
    (0-1) are dropped; `nms_threshold`: IoU above which overlapping boxes are merged; `max_side`:
    the longest side of the copy YuNet sees; `align_roll`: report each face's roll from its eyes
    (else 0), unless its nose tip sits more than `max_nose_offset` eye distances beside the eyes' middle
    (a profile, whose eye points say little of the roll; null: always). `keypoint_box` and `framing` say how this detector's boxes sit on the training
    data's faces (measured by scripts/measure_framing.py); defaults: conf/detector/yunet.yaml."""

    def __init__(self, model, min_score: float, nms_threshold: float, max_side: int, top_k: int, align_roll: bool,
                 keypoint_box: dict, framing: dict, max_nose_offset: float | None = None):
        check_knob(is_number(min_score) and 0.0 <= min_score <= 1.0, "min_score", min_score, "a YuNet score between 0 and 1")
        check_knob(is_number(nms_threshold) and 0.0 < nms_threshold <= 1.0, "nms_threshold", nms_threshold, "an IoU in (0, 1]")
        check_knob(isinstance(align_roll, bool), "align_roll", align_roll, "true or false")
        check_knob(isinstance(max_side, int) and max_side >= 32, "max_side", max_side, "an integer >= 32 (pixels)")
        check_knob(isinstance(top_k, int) and top_k >= 1, "top_k", top_k, "an integer >= 1")
        check_knob(max_nose_offset is None or (is_number(max_nose_offset) and max_nose_offset > 0), "max_nose_offset",
                   max_nose_offset, "null or a number > 0 (eye distances)")
        path = Path(model) if model else SHIPPED
        if not path.is_file():
            raise KeypointsError(f"{path}: YuNet model file not found (detector.faces.model=an .onnx file, or null for the shipped one)")
        try:
            self.net = cv2.FaceDetectorYN.create(str(path), "", (320, 320), float(min_score), float(nms_threshold), top_k)
        except cv2.error as e:
            raise KeypointsError(f"{path}: not a YuNet ONNX model ({str(e).strip().splitlines()[-1][:120]})") from None
        self.path, self.min_score, self.max_side, self.align_roll = path, min_score, max_side, align_roll
        self.max_nose_offset = max_nose_offset
        self.keypoint_box, self.framing = dict(keypoint_box), dict(framing)

    def __call__(self, image: np.ndarray) -> list[FoundFace]:
        """BGR image -> faces, left to right, boxes clipped to the photo."""
        height, width = image.shape[:2]
        small, f = shrink(image, self.max_side)
        if min(small.shape[:2]) < 8:
            return []
        self.net.setInputSize((small.shape[1], small.shape[0]))
        _, rows = self.net.detect(small)
        found = []
        for row in np.zeros((0, 15)) if rows is None else rows:
            x, y, w, h = row[:4] / f
            x0, y0 = max(0, round(x)), max(0, round(y))
            x1, y1 = min(width, round(x + w)), min(height, round(y + h))
            if x1 - x0 < 2 or y1 - y0 < 2:
                continue
            (rx, ry), (lx, ly) = row[4:6], row[6:8]  # the face's right eye (left on screen), then its left
            roll = float(np.degrees(np.arctan2(ly - ry, lx - rx))) if self.align_roll else 0.0
            # YuNet's five points: right eye, left eye, nose tip, mouth corners
            if self.max_nose_offset is not None and abs(offset_beside_eyes(row[4:6], row[6:8], row[8:10])) > self.max_nose_offset:
                roll = 0.0  # a profile: its eye points say little of the roll (a crop turned by them came out up to 90 degrees off)
            found.append(FoundFace((x0, y0, x1 - x0, y1 - y0), float(row[14]), roll))
        return sorted(found, key=lambda face: face.box[0])


