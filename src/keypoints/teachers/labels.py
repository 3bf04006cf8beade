"""From teachers' readings to training labels: point maps, confidence, combination, the CSV.

A teacher's points sit where *its* training labels put them, not where ours do, so its 68 labels are
fitted on the training split, where both exist: each of our points is an affine combination (weights
summing to 1) of the teacher's `k` nearest points (`fit_point_map`). Every point carries a
confidence: how well the teacher agrees with itself across the photo's mirror image, by point group
(jaw, brows, nose, eyes, mouth), 1 - (mean distance / sqrt(keypoint-box area)) / 0.1, clipped to
[0, 1] (at least 0.001); and 0 where the teacher may not teach that point (a group it does not teach, or a turned
face's jaw for a 3D-fitted teacher). Per point the teachers are then combined, and the CSV carries
the result: the Udacity layout, a face's `confidence` (the mean over its 51 inner points) and one
weight a point, `w0`..`w67`, which the training loss multiplies in (0: not taught).
"""

import csv
import sys
import warnings
from pathlib import Path

import numpy as np

from keypoints.benchmarks.accuracy import box_error, nme
from keypoints.core.annotations import NUM_POINTS, degenerate
from keypoints.core.errors import KeypointsError
from keypoints.core.io import image_header, images_under, open_file
from keypoints.core.landmarks import FLIP, GROUPS, INNER
from keypoints.core import outputs

AGREEMENT_SCALE = 0.1  # a disagreement of 10% of the face's size is confidence 0
MIN_WEIGHT = 1e-3  # a point's weight where its teacher may teach it but disagrees with itself


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
    """(N, 68) confidence in [0, 1] from two readings of the same faces (N, 68, 2), by point group;
    NaN readings, and points collapsed to a spot (an untrained model's), give 0."""
    out = np.zeros(a.shape[:2])
    mean = (a + b) / 2
    w, h = (mean.max(axis=1) - mean.min(axis=1)).T
    ok = np.isfinite(a).all(axis=(1, 2)) & np.isfinite(b).all(axis=(1, 2)) & (np.minimum(w, h) >= 1.0)
    distance = np.linalg.norm(a[ok] - b[ok], axis=2) / np.sqrt(w[ok] * h[ok])[:, None]
    for group in GROUPS.values():
        out[np.ix_(ok, group)] = np.clip(1 - distance[:, group].mean(axis=1, keepdims=True) / AGREEMENT_SCALE, 0, 1)
    return out


def face_confidence(point_confidence: np.ndarray) -> np.ndarray:
    """(N, 68) -> (N,): a face's confidence is its 51 inner points' (the jaw may be left untaught)."""
    return point_confidence[:, INNER].mean(axis=1)


def usable(points: np.ndarray, face: np.ndarray, sizes: np.ndarray, min_confidence: float) -> np.ndarray:
    """(N,) bool: the labels worth writing: finite, within 10% of their photo (`sizes`: (N, 2) width,
    height), taught (`face`: the faces' confidence > 0 and >= `min_confidence`), and ones the training
    reader takes (annotations.degenerate: on a full profile a 3D-fitted teacher can put the two outer
    eye corners on top of each other, and one such row would stop a training run)."""
    finite = np.isfinite(points).all(axis=(1, 2))
    inside = ((points >= -0.1 * sizes[:, None]) & (points <= 1.1 * sizes[:, None])).all(axis=(1, 2))
    keep = finite & inside & (face > 0) & (face >= min_confidence)
    return keep & np.array([bool(k) and degenerate(p) is None for k, p in zip(keep, points)], bool)


def write_csv(path: Path, names: list[str], points: np.ndarray, point_confidence: np.ndarray) -> None:
    """The Udacity layout (file name, x0, y0, ..., x67, y67), then `confidence` and `w0`..`w67`."""
    with outputs.atomic_path(path) as temp, open(temp, "x", newline="") as f:
        rows = csv.writer(f)
        rows.writerow([""] + [str(i) for i in range(2 * NUM_POINTS)] + ["confidence"] + [f"w{i}" for i in range(NUM_POINTS)])
        for name, p, c in zip(names, points, point_confidence):
            rows.writerow([name] + [f"{v:.2f}" for v in p.reshape(-1)] + [f"{face_confidence(c[None])[0]:.3f}"]
                          + [f"{v:.3f}" for v in c])


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def image_files(folder: Path) -> list[Path]:
    """Every image under `folder`, its sub-folders included (LFW keeps one folder a person), sorted."""
    if not folder.is_dir():
        raise KeypointsError(f"images={folder}: not a folder")
    files = images_under(folder)
    if not files:
        raise KeypointsError(f"images={folder}: no image files in it")
    return files


def readable(paths: list[Path]) -> tuple[list[int], np.ndarray]:
    """The indices of the photos whose headers read, and their (M, 2) widths and heights. Every other
    file is named on stderr and left out: one broken file in a folder of thousands does not stop the run."""
    kept, sizes = [], []
    for i, path in enumerate(paths):
        try:
            with open_file(path) as f:
                sizes.append(image_header(f, str(path))[0])
            kept.append(i)
        except KeypointsError as e:  # missing, a FIFO, cannot be opened, not an image
            progress(f"skipped {e}")
    return kept, np.array(sizes, np.float64).reshape(-1, 2)


def group_mask(groups, key: str = "groups") -> np.ndarray:
    """(68,) bool: the points of the named groups (jaw, brows, nose, eyes, mouth); `key` names them in an error."""
    unknown = set(groups) - set(GROUPS)
    if unknown:
        raise KeypointsError(f"{key}: unknown {sorted(unknown)} (one of {', '.join(GROUPS)})")
    mask = np.zeros(NUM_POINTS, bool)
    for g in groups:
        mask[GROUPS[g]] = True
    return mask


def read(teacher, paths: list[Path], mirror: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A teacher's readings (N, V, P, 2) and the points it may teach on each (N, V, 68): teachers that
    know when they cannot teach (3DDFA: a turned face's jaw) return both, the others only points."""
    raw = teacher(paths, mirror=mirror)
    points, teach = raw if isinstance(raw, tuple) else (raw, None)
    if teach is None:
        teach = np.ones(points.shape[:2] + (NUM_POINTS,), bool)
    return points, teach


def read_with_mirror(teacher, paths: list[Path], widths: np.ndarray, point_map, groups) -> tuple[np.ndarray, np.ndarray]:
    """A teacher's 68-point labels for the photos (`widths` in pixels; mean of photo and mirror) and
    their (N, 68) per-point confidence: mirror agreement by group, 0 where it may not teach."""
    raw, teach = read(teacher, paths)
    plain, mirrored = raw[:, 0], raw[:, 1]
    if point_map is not None:
        plain, mirrored = apply_point_map(plain, *point_map), apply_point_map(mirrored, *point_map)
    mirrored = unmirror(mirrored, widths)
    allowed = teach[:, 0] & teach[:, 1][:, FLIP] & group_mask(groups)[None]
    found = np.isfinite(plain).all(axis=2) & np.isfinite(mirrored).all(axis=2)
    # a point its teacher may teach keeps a weight above 0 even where the two readings disagree, so
    # that its teacher, not another one that may not teach it, places it (the loss barely counts it)
    return (plain + mirrored) / 2, np.maximum(agreement(plain, mirrored), MIN_WEIGHT) * (allowed & found)


def calibrate(teacher, paths: list[Path], labels: np.ndarray, k: int, ridge: float, holdout: float) -> tuple:
    """Fit the teacher's point map on labelled photos (the last `holdout` share kept out), and
    measure its labels there: NME over 68 points, the jaw's own NME over the faces where it may teach
    it, the mean offset in pixels. Returns (map, report)."""
    raw, teach = read(teacher, paths, mirror=False)
    raw, teach = raw[:, 0], teach[:, 0]
    ok = np.isfinite(raw).all(axis=(1, 2))
    fit = np.flatnonzero(ok)[: int(round((1 - holdout) * ok.sum()))]
    kept_out = np.setdiff1d(np.flatnonzero(ok), fit)
    if len(fit) < 50 or len(kept_out) < 10:
        raise KeypointsError(f"teacher {teacher.name}: found only {ok.sum()} of {len(paths)} calibration faces; too few to fit its points")
    # the map is fitted on the faces whose every point it may teach (a turned face's 3D jaw is another markup)
    whole = fit[teach[fit].all(axis=1)]
    point_map = fit_point_map(raw[whole], labels[whole], k=k, ridge=ridge)
    pred, truth = apply_point_map(raw[kept_out], *point_map), labels[kept_out]
    jaw_taught = teach[kept_out][:, GROUPS["jaw"]].all(axis=1)
    report = {"teacher": teacher.name, "calibration_faces": int(len(whole)), "held_out_faces": int(len(kept_out)),
              "found": float(ok.mean()), **held_out_errors(pred, truth, jaw_taught),
              "held_out_jaw_taught": float(jaw_taught.mean()),
              "held_out_offset_px": np.mean(pred - truth, axis=(0, 1)).round(3).tolist()}
    if raw.shape[1] == NUM_POINTS:  # a 68-point teacher: how far its own points are from ours, unmapped
        report.update(held_out_errors(raw[kept_out], truth, jaw_taught, "_unmapped"))
    return point_map, report


def held_out_errors(pred: np.ndarray, truth: np.ndarray, jaw_taught: np.ndarray, suffix: str = "") -> dict:
    """NME over 68 points, the jaw's own NME (by the eye corners), and the jaw's over the faces where
    the teacher may teach it."""
    jaw = GROUPS["jaw"]
    jaw_nme = np.array([nme(p[jaw], t[jaw], t) for p, t in zip(pred, truth)])
    return {f"held_out_nme{suffix}": float(np.mean([nme(p, t) for p, t in zip(pred, truth)])),
            f"held_out_jaw_nme{suffix}": float(jaw_nme.mean()),
            f"held_out_jaw_nme{suffix}_taught": float(jaw_nme[jaw_taught].mean()) if jaw_taught.any() else None}


def most_confident(readings: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Per point, the teacher most sure of it (the best mirror agreement where it may teach):
    labels (N, 68, 2) and per-point confidence (N, 68)."""
    points = np.stack([p for p, _ in readings])  # (T, N, 68, 2)
    confidence = np.stack([c for _, c in readings])  # (T, N, 68)
    confidence = np.where(np.isfinite(points).all(axis=3), confidence, -1.0)
    best = confidence.argmax(axis=0)
    labels = np.take_along_axis(points, best[None, ..., None], axis=0)[0]
    return labels, np.clip(confidence.max(axis=0), 0, 1)


def weighted_mean(readings: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Per point, the teachers' labels averaged with their confidence as weights (a teacher with no
    reading weighs 0): labels (N, 68, 2), NaN where no teacher is confident, and per-point
    confidence (the surest teacher's)."""
    points = np.stack([p for p, _ in readings])
    confidence = np.stack([c for _, c in readings])
    weights = np.where(np.isfinite(points).all(axis=3), confidence, 0.0)
    total = weights.sum(axis=0)
    with np.errstate(invalid="ignore"):  # points no teacher read: NaN labels, confidence 0
        labels = (np.nan_to_num(points) * weights[..., None]).sum(axis=0) / total[..., None]
    return labels.astype(np.float32), weights.max(axis=0)


COMBINE = {"most_confident": most_confident, "weighted_mean": weighted_mean}


def combine(readings: list[tuple[np.ndarray, np.ndarray]], rule: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The teachers' readings -> labels (N, 68, 2), per-point confidence (N, 68), and per face the
    teacher that weighed most. A point no teacher may teach still gets a place (the teachers' plain
    mean, so that the face's box and framing stay whole), with confidence 0: the loss ignores it."""
    labels, confidence = COMBINE[rule](readings)
    points = np.stack([p for p, _ in readings])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "mean of empty slice": a face no teacher read
        fallback = np.nanmean(points, axis=0)
    untaught = ~(confidence > 0)
    labels = np.where(untaught[..., None], fallback, labels).astype(np.float32)
    per_face = np.stack([c[:, INNER].sum(axis=1) for _, c in readings])  # (T, N)
    return labels, np.where(untaught, 0.0, confidence), per_face.argmax(axis=0)


def score(readings: list[tuple[np.ndarray, np.ndarray]], names: list[str], truth: np.ndarray) -> list[list]:
    """Table rows: each reading's labels against true ones (51 inner points / sqrt(box area), a face
    with no label failing), and how its face confidence follows its error (Pearson correlation)."""
    rows = []
    for name, (points, confidence) in zip(names, readings):
        found = np.isfinite(points[:, INNER]).all(axis=(1, 2))
        errors = np.array([box_error(p, t) if f else np.inf for p, t, f in zip(points, truth, found)])
        conf = face_confidence(confidence)
        varied = found.sum() > 2 and conf[found].std() > 0 and np.isfinite(errors[found]).all()
        corr = np.corrcoef(conf[found], errors[found])[0, 1] if varied else float("nan")
        rows.append([name, f"{found.sum()} of {len(found)}", f"{100 * errors[found].mean():.2f}%",
                     f"{100 * np.median(errors[found]):.2f}%", f"{100 * (~(errors <= 0.10)).mean():.1f}%", f"{corr:.2f}"])
    return rows
