"""Labels for unlabelled photos from a teacher, in the Udacity CSV layout plus a per-face confidence.

A teacher returns its own points (MediaPipe's 468-vertex mesh, or 68 points) for the face nearest
each photo's centre, in the photo and in its mirror image. Its points sit where *its* training
labels put them, not where ours do, so the 68 labels are fitted on the training split, where both
exist: each of our points is an affine combination (weights summing to 1) of the teacher's `k`
nearest points (`fit_point_map`). A face's confidence is how well the teacher agrees with itself
across the mirror: 1 - (mean distance between the two readings / sqrt(keypoint-box area)) / 0.1,
clipped to [0, 1]; its label is the mean of the two.
"""

import csv
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from keypoints.data.dataset import NUM_POINTS
from keypoints.errors import KeypointsError
from keypoints.landmarks import FLIP

AGREEMENT_SCALE = 0.1  # a disagreement of 10% of the face's size is confidence 0


class CommandTeacher:
    """A teacher that runs in its own environment: `command LIST OUT.npz [--no-mirror]` (LIST: a path
    a line; OUT: `points` (N, 2, P, 2), photo and mirror (N, 1, P, 2 without), NaN where no face), e.g.
    scripts/teachers/mediapipe_mesh.py under `.venv-mediapipe/bin/python`."""

    def __init__(self, command: list[str], name: str):
        self.command, self.name = [str(c) for c in command], name
        if not Path(self.command[0]).exists() and "/" in self.command[0]:
            raise KeypointsError(f"teacher.command: {self.command[0]} not found (for MediaPipe: make teacher-env)")

    def __call__(self, paths: list[Path], mirror: bool = True) -> np.ndarray:
        with tempfile.TemporaryDirectory() as tmp:
            listing, out = Path(tmp, "paths.txt"), Path(tmp, "points.npz")
            listing.write_text("".join(f"{p}\n" for p in paths))
            flags = [] if mirror else ["--no-mirror"]
            done = subprocess.run(self.command + [str(listing), str(out)] + flags, stderr=subprocess.PIPE, text=True)
            if done.returncode != 0 or not out.is_file():
                last = (done.stderr.strip().splitlines() or ["no output"])[-1]
                raise KeypointsError(f"teacher {self.name} failed (exit {done.returncode}): {last}")
            return np.load(out)["points"]


def nearest_centre_readings(paths: list[Path], mirror: bool, find) -> np.ndarray:
    """`find(bgr_image) -> [(68, 2) points]` on each photo (and its mirror image) -> (N, 2 or 1, 68, 2),
    the face nearest the photo's centre, NaN where none was found."""
    from keypoints.io import read_image

    out = np.full((len(paths), 2 if mirror else 1, NUM_POINTS, 2), np.nan, np.float32)
    for i, path in enumerate(paths):
        image = read_image(path, upright=False)
        for j, view in enumerate((image, image[:, ::-1].copy()) if mirror else (image,)):
            faces = find(view)
            if faces:
                centre = np.array(view.shape[1::-1]) / 2
                out[i, j] = min(faces, key=lambda p: np.hypot(*(p.mean(axis=0) - centre)))
    return out


class DetectorTeacher:
    """The project's own Detector as a teacher (a checkpoint or a training run's folder, meaning its
    best checkpoint; None: the shipped model), 68 points."""

    points_are_ours = True  # trained on our labels: no point map to fit

    def __init__(self, ckpt_path: str | None = None, name: str = "keypoints", **options):
        from keypoints.detect import Detector

        self.detector, self.name = Detector.from_checkpoint(ckpt_path, **options), name

    def __call__(self, paths: list[Path], mirror: bool = True) -> np.ndarray:
        """(N, 2, 68, 2): each photo and its mirror image ((N, 1, 68, 2) without), NaN where no face."""
        return nearest_centre_readings(paths, mirror, lambda image: [f.keypoints for f in self.detector(image)])


class DlibTeacher:
    """dlib's HOG faces and 68-point shape predictor (the `peers` extra). Its points follow 300-W's
    markup, not ours, so they are mapped like MediaPipe's; the model carries 300-W's non-commercial terms."""

    def __init__(self, name: str = "dlib", upsample: int = 1, max_side: int | None = None):
        from keypoints.benchmarks.peers import DlibPeer

        self.peer, self.name = DlibPeer(upsample, max_side), name

    def __call__(self, paths: list[Path], mirror: bool = True) -> np.ndarray:
        return nearest_centre_readings(paths, mirror, lambda image: [points for _, points in self.peer(image)])


def _normalise(points: np.ndarray) -> np.ndarray:
    """Each face's points moved to their centroid and scaled to unit RMS radius: the map is fitted in
    a frame that does not depend on where or how large the face is."""
    centred = points - points.mean(axis=1, keepdims=True)
    return centred / np.sqrt((centred ** 2).sum(axis=2).mean(axis=1))[:, None, None]


def fit_point_map(teacher: np.ndarray, labels: np.ndarray, k: int = 8, ridge: float = 1e-3):
    """Teacher points (N, P, 2) and our labels (N, 68, 2) of the same faces -> (indices (68, k),
    weights (68, k)): label i ~= sum_j weights[i, j] * teacher[indices[i, j]], weights summing to 1
    (so the map moves, turns and scales with the face), fitted by least squares."""
    scale = np.sqrt(((teacher - teacher.mean(axis=1, keepdims=True)) ** 2).sum(axis=2).mean(axis=1))[:, None, None]
    t = (teacher - teacher.mean(axis=1, keepdims=True)) / scale
    y = (labels - teacher.mean(axis=1, keepdims=True)) / scale
    mean_t, mean_y = t.mean(axis=0), y.mean(axis=0)
    indices = np.argsort(np.linalg.norm(mean_t[None] - mean_y[:, None], axis=2), axis=1)[:, :k]
    weights = np.zeros((NUM_POINTS, k))
    for i in range(NUM_POINTS):
        # x and y share the weights; the sum-to-one row is weighted heavily, a small ridge keeps
        # the weights from trading large opposite values between near-identical vertices
        a = np.concatenate([t[:, indices[i], 0], t[:, indices[i], 1]])
        b = np.concatenate([y[:, i, 0], y[:, i, 1]])
        a = np.vstack([a, 1e3 * np.ones(k), np.sqrt(ridge * len(b)) * np.eye(k)])
        b = np.concatenate([b, [1e3], np.sqrt(ridge * len(b)) * np.full(k, 1.0 / k)])
        weights[i] = np.linalg.lstsq(a, b, rcond=None)[0]
    return indices, weights


def apply_point_map(points: np.ndarray, indices: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(N, P, 2) teacher points -> (N, 68, 2) labels in our convention."""
    return (points[:, indices] * weights[None, :, :, None]).sum(axis=2).astype(np.float32)


def unmirror(points: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """68-point readings of mirror images -> the same faces' points in the originals (x -> w - 1 - x,
    and each point takes its mirror partner's place)."""
    out = points[:, FLIP].copy()
    out[..., 0] = widths[:, None] - 1 - out[..., 0]
    return out


def agreement(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Confidence in [0, 1] from two readings of the same faces (N, 68, 2); NaN readings, and points
    collapsed to a spot (an untrained model's), give 0."""
    out = np.zeros(len(a))
    mean = (a + b) / 2
    w, h = (mean.max(axis=1) - mean.min(axis=1)).T
    ok = np.isfinite(a).all(axis=(1, 2)) & np.isfinite(b).all(axis=(1, 2)) & (np.minimum(w, h) >= 1.0)
    d = np.linalg.norm(a[ok] - b[ok], axis=2).mean(axis=1) / np.sqrt(w[ok] * h[ok])
    out[ok] = np.clip(1 - d / AGREEMENT_SCALE, 0, 1)
    return out


def write_csv(path: Path, names: list[str], points: np.ndarray, confidence: np.ndarray) -> None:
    """The Udacity layout (file name, x0, y0, ..., x67, y67) with a last `confidence` column."""
    with open(path, "w", newline="") as f:
        rows = csv.writer(f)
        rows.writerow([""] + [str(i) for i in range(2 * NUM_POINTS)] + ["confidence"])
        for name, p, c in zip(names, points, confidence):
            rows.writerow([name] + [f"{v:.2f}" for v in p.reshape(-1)] + [f"{c:.3f}"])


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def image_files(folder: Path) -> list[Path]:
    """Every image under `folder`, its sub-folders included (LFW keeps one folder a person), sorted."""
    if not folder.is_dir():
        raise KeypointsError(f"images={folder}: not a folder")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise KeypointsError(f"images={folder}: no image files in it")
    return files


def sizes_of(paths: list[Path]) -> np.ndarray:
    """(N, 2) widths and heights, from the files' headers."""
    from PIL import Image

    return np.array([Image.open(p).size for p in paths], np.float64)


def read_with_mirror(teacher, paths: list[Path], widths: np.ndarray, point_map) -> tuple[np.ndarray, np.ndarray]:
    """A teacher's 68-point labels for the photos (`widths` in pixels; mean of photo and mirror) and
    their confidence."""
    raw = teacher(paths)
    plain, mirrored = raw[:, 0], raw[:, 1]
    if point_map is not None:
        plain, mirrored = apply_point_map(plain, *point_map), apply_point_map(mirrored, *point_map)
    mirrored = unmirror(mirrored, widths)
    return (plain + mirrored) / 2, agreement(plain, mirrored)


def calibrate(teacher, paths: list[Path], labels: np.ndarray, k: int, ridge: float, holdout: float) -> tuple:
    """Fit the teacher's point map on labelled photos (the last `holdout` share kept out), and
    measure its labels there: NME over 68 points, mean offset in pixels. Returns (map, report)."""
    from keypoints.benchmarks.accuracy import nme

    raw = teacher(paths, mirror=False)[:, 0]
    ok = np.isfinite(raw).all(axis=(1, 2))
    fit = np.flatnonzero(ok)[: int(round((1 - holdout) * ok.sum()))]
    kept_out = np.setdiff1d(np.flatnonzero(ok), fit)
    if len(fit) < 50 or len(kept_out) < 10:
        raise KeypointsError(f"teacher {teacher.name}: found only {ok.sum()} of {len(paths)} calibration faces; too few to fit its points")
    point_map = fit_point_map(raw[fit], labels[fit], k=k, ridge=ridge)
    pred = apply_point_map(raw[kept_out], *point_map)
    report = {"teacher": teacher.name, "calibration_faces": int(len(fit)), "held_out_faces": int(len(kept_out)),
              "found": float(ok.mean()), "held_out_nme": float(np.mean([nme(p, t) for p, t in zip(pred, labels[kept_out])])),
              "held_out_offset_px": np.mean(pred - labels[kept_out], axis=(0, 1)).round(3).tolist()}
    return point_map, report


def most_confident(readings: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per face, the teacher whose two readings (photo, mirror) agree best: labels, confidence, and
    which teacher it was."""
    confidence = np.stack([c for _, c in readings])
    best = confidence.argmax(axis=0)
    labels = np.stack([p for p, _ in readings])[best, np.arange(len(best))]
    return labels, confidence.max(axis=0), best


def weighted_mean(readings: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per face, the teachers' labels averaged with their confidence as weights (a teacher with no
    reading weighs 0): labels, the best teacher's confidence, and which teacher weighed most."""
    points = np.stack([p for p, _ in readings])  # (T, N, 68, 2)
    confidence = np.stack([c for _, c in readings])  # (T, N)
    weights = np.where(np.isfinite(points).all(axis=(2, 3)), confidence, 0.0)
    total = weights.sum(axis=0)
    with np.errstate(invalid="ignore"):  # faces no teacher read: NaN labels, confidence 0
        labels = (np.nan_to_num(points) * weights[..., None, None]).sum(axis=0) / total[:, None, None]
    return labels.astype(np.float32), confidence.max(axis=0), weights.argmax(axis=0)


COMBINE = {"most_confident": most_confident, "weighted_mean": weighted_mean}


def score(readings: list[tuple[np.ndarray, np.ndarray]], names: list[str], truth: np.ndarray) -> list[list]:
    """Table rows: each reading's labels against true ones (51 inner points / sqrt(box area), a face
    with no label failing), and how its confidence follows its error (Pearson correlation)."""
    from keypoints.benchmarks.accuracy import box_error

    rows = []
    for name, (points, confidence) in zip(names, readings):
        found = np.isfinite(points).all(axis=(1, 2))
        errors = np.array([box_error(p, t) if f else np.inf for p, t, f in zip(points, truth, found)])
        corr = np.corrcoef(confidence[found], errors[found])[0, 1] if found.sum() > 2 else float("nan")
        rows.append([name, f"{found.sum()} of {len(found)}", f"{100 * errors[found].mean():.2f}%",
                     f"{100 * np.median(errors[found]):.2f}%", f"{100 * (~(errors <= 0.10)).mean():.1f}%", f"{corr:.2f}"])
    return rows
