"""Teachers beside 3DDFA_V2 (keypoints.teachers.tddfa): MediaPipe's face mesh in its own environment,
this project's own model, and dlib's 68-point predictor. Each reads the face nearest each photo's
centre, in the photo and in its mirror image: (N, 2, P, 2) points, NaN where it found no face."""

import subprocess
import tempfile
from pathlib import Path

import numpy as np

from keypoints.benchmarks.peers import DlibPeer
from keypoints.core.annotations import NUM_POINTS
from keypoints.detect import Detector
from keypoints.core.errors import KeypointsError
from keypoints.core.io import read_image


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
            with np.load(out, allow_pickle=False) as z:
                return z["points"]


def nearest_centre_readings(paths: list[Path], mirror: bool, find) -> np.ndarray:
    """`find(bgr_image) -> [(68, 2) points]` on each photo (and its mirror image) -> (N, 2 or 1, 68, 2),
    the face nearest the photo's centre, NaN where none was found."""
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
        self.detector, self.name = Detector.from_checkpoint(ckpt_path, **options), name

    def __call__(self, paths: list[Path], mirror: bool = True) -> np.ndarray:
        """(N, 2, 68, 2): each photo and its mirror image ((N, 1, 68, 2) without), NaN where no face."""
        return nearest_centre_readings(paths, mirror, lambda image: [f.keypoints for f in self.detector(image)])


class DlibTeacher:
    """dlib's HOG faces and 68-point shape predictor (the `peers` extra). Its points follow 300-W's
    markup, not ours, so they are mapped like MediaPipe's; the model carries 300-W's non-commercial terms."""

    points = 68

    def __init__(self, name: str = "dlib", upsample: int = 1, max_side: int | None = None):
        self.peer, self.name = DlibPeer(upsample, max_side), name

    def __call__(self, paths: list[Path], mirror: bool = True) -> np.ndarray:
        return nearest_centre_readings(paths, mirror, lambda image: [points for _, points in self.peer(image)])
