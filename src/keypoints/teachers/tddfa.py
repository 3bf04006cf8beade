"""3DDFA_V2 (Guo et al., ECCV 2020; MIT): a small network that fits a 3D face to a crop, as a teacher.

Its 68 points are a fitted 3D face's, projected: on a turned face the jaw follows the 3D contour
through the cheek, where our 2D markup puts it on the visible outline, so it teaches the jaw only
of faces turned less than `jaw_max_yaw` (its own pose says how far). The files (ONNX network and
the 68-point face-model bases) are read from `model_dir` (../shared/models/3ddfa_v2), never copied.
The recipe, step by step as the authors run it, is in that folder's README; `check/expected.json`
there is reproduced by tests/test_teachers.py.
"""

from pathlib import Path

import cv2
import numpy as np

from keypoints.core.errors import KeypointsError
from keypoints.inference.faces import load_faces
from keypoints.core.io import read_image
from keypoints.core.landmarks import GROUPS

SIZE = 120  # the network's input side


def roi_from_box(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """Pass 1: the square crop the authors cut around a face box (centre lowered 0.14 of its size)."""
    size = (x1 - x0 + y1 - y0) / 2
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + 0.14 * size
    side = int(1.58 * size)
    return np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2])


def roi_from_points(points: np.ndarray) -> np.ndarray:
    """Pass 2: the square of side sqrt(2) * the points' longer extent, centred on their box."""
    low, high = points.min(axis=0), points.max(axis=0)
    centre, side = (low + high) / 2, np.sqrt(2) * (high - low).max()
    return np.concatenate([centre - side / 2, centre + side / 2])


def crop(image: np.ndarray, roi: np.ndarray) -> np.ndarray:
    """The BGR pixels inside `roi` (corners rounded; outside the photo: 0) at SIZE x SIZE."""
    sx, sy, ex, ey = (int(round(v)) for v in roi)
    h, w = image.shape[:2]
    out = np.zeros((ey - sy, ex - sx, 3), np.uint8)
    ax, ay, bx, by = max(sx, 0), max(sy, 0), min(ex, w), min(ey, h)
    if bx > ax and by > ay:
        out[ay - sy:by - sy, ax - sx:bx - sx] = image[ay:by, ax:bx]
    return cv2.resize(out, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)


class TDDFA:
    """`model_dir`: a folder with mb05_120x120.onnx and bfm68.npz; `faces`: the face stage that finds
    the face nearest each photo's centre; `jaw_max_yaw`: degrees of yaw past which the jaw is not taught;
    `batch`: crops a network call; `threads`: ONNX Runtime's intra-op threads (0: its default)."""

    points = 68  # the 68-point markup, indexed as ours
    points_are_ours = False  # but placed by a 3D face: measured (and mapped, unless map_points=false) on the training split

    def __init__(self, model_dir: str, name: str = "3ddfa", faces="yunet", jaw_max_yaw: float = 30.0,
                 batch: int = 64, threads: int = 0):
        import onnxruntime as ort  # the `onnx` extra (in dev); inference itself runs on torch alone

        model_dir = Path(model_dir)
        onnx_file, bases_file = model_dir / "mb05_120x120.onnx", model_dir / "bfm68.npz"
        for f in (onnx_file, bases_file):
            if not f.is_file():
                raise KeypointsError(f"teachers.3ddfa.model_dir={model_dir}: {f.name} not found (../shared/models/3ddfa_v2)")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        with np.load(bases_file, allow_pickle=False) as b:
            self.mean, self.std = b["param_mean"], b["param_std"]
            self.u, self.w_shp, self.w_exp = b["u_base"], b["w_shp_base"], b["w_exp_base"]
        self.name, self.faces, self.jaw_max_yaw, self.batch = name, load_faces(faces), jaw_max_yaw, batch

    def params(self, crops: np.ndarray) -> np.ndarray:
        """(N, 120, 120, 3) BGR crops -> (N, 62) de-whitened parameters (pose 12, shape 40, expression 10)."""
        x = ((crops.astype(np.float32) - 127.5) / 128).transpose(0, 3, 1, 2)
        out = [self.session.run(None, {"input": x[i:i + self.batch]})[0] for i in range(0, len(x), self.batch)]
        return np.concatenate(out) * self.std + self.mean

    def reconstruct(self, params: np.ndarray, rois: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Parameters and their crops' boxes -> (N, 68, 2) points in the photo, (N,) yaw in degrees."""
        pose = params[:, :12].reshape(-1, 3, 4)
        shape = self.u + params[:, 12:52] @ self.w_shp.T + params[:, 52:62] @ self.w_exp.T  # (N, 204)
        v = pose[:, :, :3] @ shape.reshape(-1, 68, 3).transpose(0, 2, 1) + pose[:, :, 3:]  # (N, 3, 68), y up
        scale = (rois[:, 2] - rois[:, 0]) / SIZE
        x = (v[:, 0] - 1) * scale[:, None] + rois[:, None, 0]
        y = (SIZE - v[:, 1]) * scale[:, None] + rois[:, None, 1]
        r1 = pose[:, 0, :3] / np.linalg.norm(pose[:, 0, :3], axis=1, keepdims=True)
        r2 = pose[:, 1, :3] / np.linalg.norm(pose[:, 1, :3], axis=1, keepdims=True)
        yaw = np.degrees(np.arcsin(np.clip(np.cross(r1, r2)[:, 0], -1, 1)))  # the authors' matrix2angle
        return np.stack([x, y], axis=2).astype(np.float32), yaw

    def fit(self, images: list[np.ndarray], boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """Both passes on faces (x0, y0, x1, y1 boxes, one an image) -> points, yaw, and each pass's
        (rois, points) for checking against the authors' numbers."""
        rois = np.stack([roi_from_box(*b) for b in boxes])
        first, _ = self.reconstruct(self.params(np.stack([crop(im, r) for im, r in zip(images, rois)])), rois)
        rois2 = np.stack([roi_from_points(p) for p in first])
        second, yaw = self.reconstruct(self.params(np.stack([crop(im, r) for im, r in zip(images, rois2)])), rois2)
        return second, yaw, [(rois, first), (rois2, second)]

    def teaches(self, yaw: np.ndarray) -> np.ndarray:
        """(N, 68) bool: the points it may teach on faces of this yaw (all but a turned face's jaw)."""
        out = np.ones((len(yaw), 68), bool)
        out[np.ix_(np.abs(yaw) > self.jaw_max_yaw, GROUPS["jaw"])] = False
        return out

    def __call__(self, paths: list[Path], mirror: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(N, 2, 68, 2) points for each photo's face nearest its centre and for the mirror image's
        ((N, 1, ...) without), NaN where no face; and (N, 2 or 1, 68) the points it may teach."""
        views = 2 if mirror else 1
        points = np.full((len(paths), views, 68, 2), np.nan, np.float32)
        teach = np.zeros((len(paths), views, 68), bool)
        images, boxes, where = [], [], []
        for i, path in enumerate(paths):
            image = read_image(path, upright=False)
            faces = self.faces(image)
            if not faces:
                continue
            centre = np.array(image.shape[1::-1]) / 2
            x, y, w, h = min(faces, key=lambda f: np.hypot(*(np.array(f.box[:2]) + np.array(f.box[2:]) / 2 - centre))).box
            width = image.shape[1]
            for j in range(views):  # the mirror image's face is the same box, mirrored
                images.append(image if j == 0 else image[:, ::-1])
                boxes.append((x, y, x + w, y + h) if j == 0 else (width - x - w, y, width - x, y + h))
                where.append((i, j))
            if len(images) >= self.batch * 4:  # a few batches at a time: photos decoded, not all kept
                self._flush(images, boxes, where, points, teach)
                images, boxes, where = [], [], []
        self._flush(images, boxes, where, points, teach)
        return points, teach

    def _flush(self, images, boxes, where, points, teach) -> None:
        if not images:
            return
        fitted, yaw, _ = self.fit(images, np.array(boxes, np.float64))
        allowed = self.teaches(yaw)
        for (i, j), p, a in zip(where, fitted, allowed):
            points[i, j], teach[i, j] = p, a
