"""YuNet: a small CNN face detector (Apache-2.0, shipped in keypoints/inference/faces/yunet/), run by ONNX
Runtime (the default) or by OpenCV's cv2.FaceDetectorYN.

Besides a box and a score it gives 5 points per face: the line through the eyes tells the face's
roll, so the keypoint model's first crop can be turned upright and tilted heads need no extra
turned searches. It looks at a copy of the photo no longer than `max_side`: first at `scale` of its size,
then again at the full size where that first look is unsure (`YuNet.rows`).

Why two runtimes: OpenCV's DNN runs this network about half as fast as ONNX Runtime on a 2-core
CPU, and the face stage was half of a small photo's time (docs/RESULTS.md, "Time budget"). Under
ONNX Runtime the network needs an input of any size, so the package ships a copy of the file whose
input height and width are symbolic (yunet/README.md), and `decode` does what FaceDetectorYN does
after the network (OpenCV's face_detect.cpp): the same padding, score, box and point decoding, and
OpenCV's own NMSBoxes on the same integer boxes, so both runtimes return the same faces
(tests/test_detect.py compares them).
"""

import functools
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from keypoints.core.errors import KeypointsError
from keypoints.core.geometry import box_iou
from keypoints.inference.faces import FoundFace
from keypoints.core.io import shrink
from keypoints.core.landmarks import offset_beside_eyes

SHIPPED = Path(__file__).parent / "yunet" / "yunet_n_640_640.onnx"
# The same network with a symbolic input size, for ONNX Runtime (yunet/README.md says how it was made)
SHIPPED_DYNAMIC = Path(__file__).parent / "yunet" / "yunet_n_dynamic.onnx"
STRIDES = (8, 16, 32)  # the network's three output scales, in input pixels a cell
OUTPUTS = [f"{kind}_{stride}" for kind in ("cls", "obj", "bbox", "kps") for stride in STRIDES]


class YuNet:
    """`model`: an ONNX file (None: the shipped one); `min_score`: faces below this YuNet score
    (0-1) are dropped; `nms_threshold`: IoU above which overlapping boxes are merged; `max_side`:
    the longest side of the copy YuNet sees, first at most `scale` times the photo's (`recheck_score`:
    the weakest candidate of that look to look at again at the full size, None: one look); `align_roll`:
    report each face's roll from its eyes (else 0), unless its nose tip sits more than `max_nose_offset`
    eye distances beside the eyes' middle (a profile, whose eye points say little of the roll; null:
    always). `keypoint_box` and `framing` say how this detector's boxes sit on the training data's faces
    (measured by scripts/measure_framing.py). Every default and check: keypoints.inference.faces.config.YuNetFaces."""

    def __init__(self, model, min_score: float, nms_threshold: float, max_side: int, scale: float, recheck_score: float | None,
                 top_k: int, align_roll: bool,
                 keypoint_box: dict, framing: dict, max_nose_offset: float | None, runtime: str):
        path = Path(model) if model else SHIPPED_DYNAMIC if runtime == "onnxruntime" else SHIPPED
        if not path.is_file():
            raise KeypointsError(f"{path}: YuNet model file not found (detector.faces.model=an .onnx file, or null for the shipped one)")
        self.net = self.session = None
        self.threads = 1  # ONNX Runtime's intra-op threads (use_threads)
        if runtime == "onnxruntime":
            self.session = _session(path, self.threads)
        else:
            try:
                self.net = cv2.FaceDetectorYN.create(str(path), "", (320, 320), float(min_score), float(nms_threshold), top_k)
            except cv2.error as e:
                raise KeypointsError(f"{path}: not a YuNet ONNX model ({str(e).strip().splitlines()[-1][:120]})") from None
        self.path, self.min_score, self.max_side, self.scale, self.align_roll = path, min_score, max_side, scale, align_roll
        self.nms_threshold, self.top_k, self.runtime, self.recheck_score = nms_threshold, top_k, runtime, recheck_score
        self.max_nose_offset = max_nose_offset
        # an ONNX Runtime session takes concurrent calls; cv2.FaceDetectorYN keeps the last input size
        self.thread_safe = runtime == "onnxruntime"
        self.keypoint_box, self.framing = dict(keypoint_box), dict(framing)

    def __call__(self, image: np.ndarray) -> list[FoundFace]:
        """BGR image -> faces, left to right, boxes clipped to the photo."""
        height, width = image.shape[:2]
        found = []
        for row in self.rows(image):
            x, y, w, h = row[:4]
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

    def rows(self, image: np.ndarray) -> np.ndarray:
        """BGR image -> (n, 15) face rows in the photo's pixels (x, y, w, h, 5 points, score).

        With `scale` < 1, two looks: YuNet first sees the smaller copy; its faces that score
        `min_score` stand, and its weaker candidates (at least `recheck_score`) are looked at again at
        the full size on a crop around each, where they stand if they score `min_score` there. A photo
        where the first look finds nothing gets the full-size look, and so does one whose re-checks
        would see more pixels than the photo has (many weak candidates). Faces a half-size copy still
        misses: those under ~20 px that score under `recheck_score` there (docs/RESULTS.md)."""
        height, width = image.shape[:2]
        full = min(self.max_side, max(height, width))
        # at least 1 px: shrink reads a side of 0 as no limit
        side = min(full, max(1, round(max(height, width) * self.scale)))
        two_looks = side < full and self.recheck_score is not None
        rows = self._look(image, side, self.recheck_score if two_looks else self.min_score)
        if not two_looks:
            return rows
        if not len(rows):
            return self._look(image, full, self.min_score)
        strong, weak = rows[rows[:, 14] >= self.min_score], rows[rows[:, 14] < self.min_score]
        crops = [_around(row, width, height) for row in weak]
        if sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in crops) > width * height:
            return self._look(image, full, self.min_score)  # re-checking would cost more than the full-size look
        kept, f = list(strong), full / max(height, width)  # f: the full-size look's scale
        for row, crop in zip(weak, crops):
            face = self._recheck(image, row, crop, f)
            if face is not None and all(box_iou(face, other) <= self.nms_threshold for other in kept):
                kept.append(face)
        return np.array(kept, dtype=np.float32).reshape(-1, 15)

    def _look(self, image: np.ndarray, side: int, min_score: float) -> np.ndarray:
        """YuNet on a copy of `image` no longer than `side`: its rows at `min_score`, in `image`'s pixels."""
        small, f = shrink(image, side)
        if min(small.shape[:2]) < 8:
            return np.zeros((0, 15), np.float32)
        if self.session is not None:
            rows = self.detect(small, min_score)
        else:
            self.net.setInputSize((small.shape[1], small.shape[0]))
            self.net.setScoreThreshold(float(min_score))
            rows = self.net.detect(small)[1]
        rows = np.zeros((0, 15), np.float32) if rows is None else rows.copy()
        rows[:, :14] /= f
        return rows

    def _recheck(self, image: np.ndarray, row: np.ndarray, crop: tuple, f: float) -> np.ndarray | None:
        """A weak candidate of the first look, looked at on the `crop` (x0, y0, x1, y1) of the photo at
        `f` of its size (the full-size look's): the best row overlapping it that scores `min_score` there, or None."""
        x0, y0, x1, y1 = crop
        part = image[y0:y1, x0:x1]
        rows = self._look(part, max(1, round(max(part.shape[:2]) * f)), self.min_score)
        rows[:, [0, 4, 6, 8, 10, 12]] += x0  # x, then the five points' x
        rows[:, [1, 5, 7, 9, 11, 13]] += y0
        matches = [r for r in rows if box_iou(r, row) > 0.3]
        return max(matches, key=lambda r: r[14]) if matches else None

    def use_threads(self, threads: int | None) -> None:
        """ONNX Runtime's intra-op threads for YuNet (None: one per core); OpenCV's runtime: its own pool."""
        if self.session is not None and threads != self.threads:
            self.session = _session(self.path, threads)
        self.threads = threads

    def detect(self, image: np.ndarray, min_score: float | None = None) -> np.ndarray:
        """BGR image -> (n, 15) rows as cv2.FaceDetectorYN.detect gives them (x, y, w, h, 5 points, score)
        scoring at least `min_score` (None: the stage's)."""
        h, w = image.shape[:2]
        padded_h, padded_w = -(-h // 32) * 32, -(-w // 32) * 32  # FaceDetectorYN pads to a multiple of 32
        padded = cv2.copyMakeBorder(image, 0, padded_h - h, 0, padded_w - w, cv2.BORDER_CONSTANT, value=0)
        outputs = dict(zip(OUTPUTS, self.session.run(OUTPUTS, {"input": padded.transpose(2, 0, 1)[None].astype(np.float32)})))
        return decode(outputs, padded_w, padded_h, self.min_score if min_score is None else min_score, self.nms_threshold, self.top_k)


def decode(outputs: dict, width: int, height: int, min_score: float, nms_threshold: float, top_k: int) -> np.ndarray:
    """YuNet's outputs for a `width` x `height` input -> face rows, as OpenCV's FaceDetectorYN
    decodes them: score sqrt(cls * obj) (both clipped to [0, 1]); box centre (cell + offset) * stride,
    size exp(log size) * stride; points (cell + offset) * stride; then NMSBoxes on integer boxes.
    The three scales' cells are scored as one array and only those that pass are decoded: on arrays
    this small each NumPy call costs more than its work (decoding took ~0.15 ms a look, a small
    photo's YuNet ~0.6)."""
    cls = np.concatenate([outputs[f"cls_{stride}"][0, :, 0] for stride in STRIDES])
    obj = np.concatenate([outputs[f"obj_{stride}"][0, :, 0] for stride in STRIDES])
    score = np.sqrt(np.minimum(np.maximum(cls, 0), 1) * np.minimum(np.maximum(obj, 0), 1))
    cells = np.flatnonzero(score >= min_score)
    if not len(cells):
        return np.zeros((0, 15), np.float32)
    col, row, stride = _grid(width, height)[:, cells]  # each cell's column, row and stride
    box = np.concatenate([outputs[f"bbox_{s}"][0] for s in STRIDES])[cells]
    points = np.concatenate([outputs[f"kps_{s}"][0] for s in STRIDES])[cells]
    faces = np.empty((len(cells), 15), np.float32)
    faces[:, 2:4] = np.exp(box[:, 2:4]) * stride[:, None]  # w, h
    faces[:, 0:2] = (np.stack([col, row], axis=1) + box[:, 0:2]) * stride[:, None] - faces[:, 2:4] / 2
    faces[:, 4:14:2] = (points[:, 0::2] + col[:, None]) * stride[:, None]  # the five points' x, then y
    faces[:, 5:14:2] = (points[:, 1::2] + row[:, None]) * stride[:, None]
    faces[:, 14] = score[cells]
    if len(faces) > 1:
        keep = cv2.dnn.NMSBoxes(faces[:, :4].astype(np.int32).tolist(), faces[:, 14].tolist(), min_score, nms_threshold, 1.0, top_k)
        faces = faces[np.asarray(keep, dtype=int).reshape(-1)]
    return faces


@functools.lru_cache(maxsize=64)
def _grid(width: int, height: int) -> np.ndarray:
    """(3, cells) float32: the column, row and stride of each of YuNet's output cells, the three
    scales one after another, for a `width` x `height` input."""
    grids = []
    for stride in STRIDES:
        rows, cols = np.divmod(np.arange((height // stride) * (width // stride)), width // stride)
        grids.append(np.stack([cols, rows, np.full_like(cols, stride)]))
    grid = np.concatenate(grids, axis=1).astype(np.float32)
    grid.flags.writeable = False
    return grid


def _around(row: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """The crop (x0, y0, x1, y1) to look at a candidate again in: twice its side, and at least 64 px, as
    YuNet scores a face by its surroundings too (chosen on the unlabelled AFLW, Udacity and LFW photos,
    docs/RESULTS.md "Two looks at the photo"), within the photo."""
    x, y, w, h = row[:4]
    half = max(2 * max(w, h), 64) / 2
    x0, y0 = int(max(0, x + w / 2 - half)), int(max(0, y + h / 2 - half))
    return x0, y0, int(min(width, x + w / 2 + half)), int(min(height, y + h / 2 + half))


def _session(path: Path, threads: int | None):
    """An ONNX Runtime session for a YuNet file with a symbolic input size, on `threads` intra-op
    threads (None: ORT's default, one per core) that do not spin between calls, so they leave the
    cores to the keypoint network that runs next."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or 0
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # ORT's own Fail / InvalidProtobuf types for any unreadable file
        raise KeypointsError(f"{path}: not a YuNet ONNX model ({str(e).splitlines()[0][:120]})") from None
    if not set(OUTPUTS) <= {o.name for o in session.get_outputs()}:
        raise KeypointsError(f"{path}: not a YuNet ONNX model (no {', '.join(OUTPUTS[:3])}, ... outputs)")
    if any(isinstance(d, int) for d in session.get_inputs()[0].shape[2:]):
        raise KeypointsError(f"{path}: a YuNet export with a fixed input size, which ONNX Runtime cannot run on other "
                             "sizes: detector.faces.runtime=opencv runs it (or free its size: keypoints/inference/faces/yunet/README.md)")
    return session
