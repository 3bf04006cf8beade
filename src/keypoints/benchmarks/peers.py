"""Off-the-shelf peers to measure against: dlib's HOG face detector + 68-point shape predictor
(the `peers` extra: dlib-bin, face-recognition-models), and MediaPipe's face mesh for speed (its own
environment: `make teacher-env`)."""

import importlib.util
import json
import subprocess
from pathlib import Path

import cv2
import numpy as np

from keypoints.core import outputs
from keypoints.core.errors import KeypointsError
from keypoints.core.io import shrink


class DlibPeer:
    """`DlibPeer()(bgr_image) -> [(box, (68, 2) keypoints)]` in the image's pixels. Like our face
    stages it looks at a grayscale copy no longer than `max_side` (None: full size)."""

    def __init__(self, upsample: int = 1, max_side: int | None = None):
        try:
            import dlib
        except ImportError:
            raise KeypointsError("dlib is not installed (pip install -e '.[peers]')") from None
        # face_recognition_models' __init__ imports pkg_resources, which setuptools 81+ no longer
        # has: find its model file without running it.
        spec = importlib.util.find_spec("face_recognition_models")
        model = spec and Path(spec.submodule_search_locations[0], "models", "shape_predictor_68_face_landmarks.dat")
        if not model or not model.is_file():
            raise KeypointsError("face_recognition_models is not installed (pip install -e '.[peers]')")
        self.version = dlib.__version__
        self.hog, self.shapes = dlib.get_frontal_face_detector(), dlib.shape_predictor(str(model))
        self.upsample, self.max_side = upsample, max_side

    def gray(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """The grayscale copy dlib sees, and its scale relative to `image`."""
        return shrink(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), self.max_side)

    def __call__(self, image: np.ndarray) -> list[tuple[tuple[int, int, int, int], np.ndarray]]:
        gray, f = self.gray(image)
        found = []
        for r in self.hog(gray, self.upsample):
            points = np.array([[p.x, p.y] for p in self.shapes(gray, r).parts()], np.float32) / f
            found.append((tuple(round(v / f) for v in (r.left(), r.top(), r.width(), r.height())), points))
        return found


class MediaPipePeer:
    """MediaPipe's face mesh timed in its own environment (`make teacher-env`), over the same photo
    files, one pass at a time (scripts/peers/mediapipe_timer.py): `peer.one_pass() -> (seconds, faces)`.
    Its own process and Python: a timing, never points (its 468-point mesh is another markup)."""

    def __init__(self, python, script, files: list[Path], list_file: Path, timeout_s: float = 600):
        if not Path(python).is_file():
            raise KeypointsError(f"{python}: no MediaPipe environment (make teacher-env)")
        outputs.write_text(list_file, "".join(f"{f}\n" for f in files))
        self.timeout_s = timeout_s
        self.process = subprocess.Popen([str(python), str(script), str(list_file)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready = self._answer()
        if ready.get("ready") != len(files):
            raise KeypointsError(f"{script}: loaded {ready.get('ready')} of {len(files)} photos")

    def _answer(self) -> dict:
        line = self.process.stdout.readline()  # one JSON line an answer (a pass of 200 photos: seconds)
        if not line:
            self.process.wait(timeout=self.timeout_s)
            raise KeypointsError(f"MediaPipe peer stopped: {self.process.stderr.read().strip().splitlines()[-1:]}")
        return json.loads(line)

    def one_pass(self) -> tuple[float, int]:
        self.process.stdin.write("pass\n")
        self.process.stdin.flush()
        answer = self._answer()
        return answer["seconds"], answer["faces"]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(timeout=30)
