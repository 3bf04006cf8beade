"""Head pose and 3D points against AFLW2000-3D's labels (../shared/data/wild/aflw: labelled_pose.csv,
labelled_3d.csv), end to end, on the faces a method found:

- pose: the mean absolute error of yaw, pitch and roll in degrees, in AFLW2000-3D's convention
  (keypoints.core.pose.Pose.aflw2000), the pose networks' published figures beside it;
- 3D points: the mean 3D distance over the 51 inner points, each face's mean depth (over its 68 points)
  removed from both, by sqrt(w·h) of the labelled points' box, as the 2D box error.
"""

import csv
from pathlib import Path

import numpy as np

from keypoints.core import tables
from keypoints.core.annotations import read_annotations
from keypoints.core.errors import KeypointsError

INNER = slice(17, 68)
# Published MAE on AFLW2000 (yaw, pitch, roll; all of its 1,969 photos within ±99°, not these 100; trained on
# 300W-LP), from their READMEs as ../shared/data/wild/README.md lists them
PUBLISHED = {"HopeNet": (6.47, 6.56, 5.44), "FSA-Net": (4.50, 6.08, 4.64), "3DDFA_V2": (4.06, 5.26, 3.48),
             "6DRepNet": (3.63, 4.91, 3.37), "img2pose": (3.43, 5.03, 3.28), "SynergyNet": (3.42, 4.09, 2.55)}


def load_heads(labels, pose, points_3d, limit: int | None = None, skip: int = 0) -> dict:
    """The labelled rows' poses (N, 3: yaw, pitch, roll in AFLW2000-3D's convention) and 3D points (N, 68, 3),
    in the order of the 2D labels' CSV (the same `limit` and `skip`); one line naming a file or row at fault."""
    names, _ = read_annotations(Path(labels))
    names = names[skip:None if limit is None else skip + limit]
    poses, depths = _rows(Path(pose), "file,yaw,pitch,roll"), _rows(Path(points_3d), "file,x0,y0,z0")
    for name in names:
        for path, table, width in ((pose, poses, 3), (points_3d, depths, 204)):
            if len(table.get(name, ())) < width:
                raise KeypointsError(f"{path}: no row of {width} numbers for {name}")
    return {"pose": np.array([poses[n][:3] for n in names], np.float64),
            "points_3d": np.array([depths[n][:204] for n in names], np.float64).reshape(-1, 68, 3)}


def _rows(path: Path, header: str) -> dict[str, list[float]]:
    """A CSV of a file name and numbers a row, as name -> numbers."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as e:
        raise KeypointsError(f"{path}: cannot be read ({getattr(e, 'strerror', None) or e})") from None
    if not rows or not ",".join(rows[0]).startswith(header):
        raise KeypointsError(f"{path}:1: expected a header starting {header}")
    table = {}
    for line, row in enumerate(rows[1:], start=2):
        try:
            table[row[0]] = [float(v) for v in row[1:]]
        except (ValueError, IndexError):
            raise KeypointsError(f"{path}:{line}: not a file name followed by numbers") from None
    return table


def errors(face, pose: np.ndarray, points_3d: np.ndarray) -> tuple[np.ndarray, float]:
    """One found face's absolute yaw, pitch and roll errors (degrees) and its inner-51 3D error by the box;
    NaN where the face has no pose."""
    if getattr(face, "pose", None) is None or getattr(face, "keypoints_3d", None) is None:
        return np.full(3, np.nan), float("nan")
    w, h = np.ptp(points_3d[:, 0]), np.ptp(points_3d[:, 1])
    truth = points_3d - [0, 0, points_3d[:, 2].mean()]
    got = face.keypoints_3d - [0, 0, face.keypoints_3d[:, 2].mean()]
    return (np.abs(np.subtract(face.pose.aflw2000(), pose)),
            float(np.linalg.norm(got[INNER] - truth[INNER], axis=1).mean() / np.sqrt(w * h)))


COLUMNS = ["method", "faces with a pose", "yaw", "pitch", "roll", "mean (degrees)", "3D inner 51 / box"]


def table(results: dict[str, dict]) -> str:
    """Each method's pose MAE and 3D error over the faces it found and fitted, the published figures below."""
    rows = []
    for name, r in results.items():
        if "pose_errors" not in r:
            continue
        figures = summary(r)
        fitted = f"{figures['faces']} of {len(r['pose_errors'])}"
        rows.append([name, fitted, *(f"{figures[k]:.2f}" for k in ("yaw", "pitch", "roll", "mean")), f"{100 * figures['points_3d_box']:.2f}%"]
                    if figures["faces"] else [name, fitted, "-", "-", "-", "-", "-"])
    rows += [[f"{name} (published, all of AFLW2000)", "-", *(f"{v:.2f}" for v in mae), f"{np.mean(mae):.2f}", "-"]
             for name, mae in PUBLISHED.items()]
    return "Head pose (AFLW2000-3D's convention: mean absolute error) and 3D points\n\n" + tables.markdown(COLUMNS, rows)


def summary(r: dict) -> dict:
    """The JSON figures: pose MAE (yaw, pitch, roll, mean) and the 3D error over the fitted faces."""
    fitted = np.isfinite(r["pose_errors"]).all(axis=1)
    if not fitted.any():
        return {"faces": 0}
    mae = r["pose_errors"][fitted].mean(axis=0)
    return {"faces": int(fitted.sum()), "yaw": float(mae[0]), "pitch": float(mae[1]), "roll": float(mae[2]),
            "mean": float(mae.mean()), "points_3d_box": float(np.mean(r["points_3d_errors"][fitted]))}
