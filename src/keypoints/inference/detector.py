"""Photo -> faces -> 68 keypoints each, in the photo's pixels.

    det = keypoints.Detector()            # the shipped model; or Detector.from_checkpoint("model.ckpt")
    for face in det("photo.jpg"):
        print(face.box, face.score, face.keypoints.shape, face.pose)  # (x, y, w, h), float, (68, 2), Pose

This is the inference wing's Detector: it runs model files (the shipped model's ONNX copies, or a
.onnx of one's own) on NumPy, OpenCV and ONNX Runtime. keypoints.Detector (keypoints.detect) is this
class plus checkpoints (.ckpt, loaded modules) run in torch, with the `train` extra.

Faces come from a face stage (keypoints.inference.faces: YuNet by default, or the seed's Haar cascade); each
box is framed the way the model's training images framed a face (the stage's `keypoint_box` /
`framing`, keypoints.inference.faces.config), turned upright by the face's roll, cut out through
`geometry`, and all faces (of one photo, or of `detect_many`'s photos) go through the network in
one batch. Each face's head pose (yaw, pitch, roll) comes from its keypoints (keypoints.core.pose); a
video's faces also carry a track id (keypoints.inference.video). The JSON of a face: docs/JSON.md.
"""

import os
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keypoints.core import geometry
from keypoints.inference.faces import FaceStage, load_faces
from keypoints.inference.backends import resolve_backend
from keypoints.inference.config import DEFAULT_FACES, keywords, partition, split_settings
from keypoints.inference.onnx_runtime import OnnxPredictor
from keypoints.inference.pipeline import eval_pipeline, to_chw
from keypoints.core.io import check_pixels, read_image, to_bgr
from keypoints.core.landmarks import FLIP, nose_offset, roll
from keypoints.core.errors import KeypointsError
from keypoints.core.pose import Pose, fit_heads


@dataclass
class Face:
    box: tuple[int, int, int, int]  # x, y, w, h in the photo's pixels
    score: float | None  # the face stage's confidence: YuNet's score (0-1), or Haar's last-stage weight (unbounded)
    keypoints: np.ndarray  # (68, 2) float32, x and y in the photo's pixels
    pose: Pose | None = None  # yaw, pitch, roll in degrees (keypoints.core.pose); None if the fit failed
    track: int | None = None  # in a video: the id the face keeps from frame to frame; None in photos
    keypoints_3d: np.ndarray | None = None  # (68, 3): the 3D face fitted with the pose (x, y pixels, z toward the camera)

    @classmethod
    def fitted(cls, boxes: list, scores: list, points: list, tracks: list | None = None) -> list["Face"]:
        """Faces with their pose and 3D points, from one fit of the 3D face model to each face's keypoints
        (all of them together: keypoints.core.pose.fit_heads)."""
        heads, tracks = fit_heads(points), tracks or [None] * len(points)
        return [cls(box, score, p, None if head is None else head.pose, track, None if head is None else head.points)
                for box, score, p, head, track in zip(boxes, scores, points, heads, tracks)]

    def to_json(self) -> dict:
        """The face's JSON (docs/JSON.md): new keys are only ever added, so older readers keep working."""
        out = {"box": [int(v) for v in self.box], "score": None if self.score is None else float(self.score),
               "keypoints": self.keypoints.astype(float).round(2).tolist(),
               "pose": None if self.pose is None else self.pose.to_json(),
               "keypoints_3d": None if self.keypoints_3d is None else self.keypoints_3d.astype(float).round(2).tolist()}
        return out if self.track is None else {**out, "track": int(self.track)}


def cores() -> int:
    """The cores this process may run on (its affinity where the OS tells it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class StageClock:
    """Seconds per stage of a Detector's pipeline, summed over calls: `detector.clock = StageClock()`
    (scripts/benchmark_speed.py's per-stage budget). A Detector's own clock times nothing."""

    def __init__(self):
        self.seconds = defaultdict(float)

    @contextmanager
    def __call__(self, stage: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - start


def untimed(stage: str):
    return nullcontext()


class Detector:
    """A landmark model behind a face stage: `Detector()(image) -> [Face]`.

    `faces`: the face stage, by name ("yunet", the default, or "haar"), as a config with `_target_`,
    or built (keypoints.inference.faces.load_faces). Whole-frame models (the seed's) see a square around the
    face box as the stage's `framing` says. Face-crop models (trained with `data=face`) see the frame
    they were trained on: a first pass frames the face from the keypoint box that the face box
    predicts (the stage's `keypoint_box`), turned upright by the face's roll when the stage tells
    it; then `refine` more passes frame it from the model's own keypoints (upright by their eyes),
    as in training; `flip` averages each pass with its mirror image (labels swapped back).
    """

    def __init__(self, predictor=None, faces=DEFAULT_FACES, **settings):
        """`predictor`: the network as one call, (N, C, S, S) float32 -> (N, 68, 2) normalised keypoints,
        with `.metadata` (input_size, channels, data_config, architecture: keypoints.inference.model_files);
        None: the shipped model in the file `backend` runs on `device` (keypoints.inference.backends: "auto"
        is its int8 or float copy on the CPU, whichever this CPU runs faster with the same points, measured
        once: keypoints.inference.choice). `settings`: refine, refine_min_move, flip, device, backend,
        max_megapixels, ort_threads, workers, each declared once with its default, meaning and check in
        keypoints.inference.config (`keypoints detect --help` lists them)."""
        config, runtime = split_settings(settings)  # one line on a wrong or unknown one
        self.settings = keywords(config, runtime)  # as checked, every one (the CLIs, the server and Ray pass them all)
        if predictor is None:
            kind, path = resolve_backend(runtime.backend, runtime.device)
            if kind != "onnxruntime":
                raise KeypointsError(f"backend={runtime.backend} on {runtime.device}: the shipped model's checkpoint runs in torch "
                                     "(keypoints.Detector, with pip install 'keypoints[train]')")
            predictor = OnnxPredictor.from_file(path, runtime.device, runtime.session_threads)
        meta = predictor.metadata
        self.size, self.channels, self.architecture = meta["input_size"], meta["channels"], meta["architecture"]
        self.to_input, self.frame = eval_pipeline(meta["data_config"], meta.get("checkpoint") or "the model file")
        self.predictor = predictor
        self.faces: FaceStage = load_faces(faces)
        self.faces.use_threads(runtime.session_threads)
        self.refine, self.flip, self.refine_min_move = config.refine, config.flip, config.refine_min_move
        self.clock = untimed  # a StageClock times each stage (scripts/benchmark_speed.py)
        # the pixel budget of a photo, a path's by its header and an array's by its shape (keypoints.core.io)
        self.max_pixels = runtime.max_pixels
        self.upright = self.faces.align_roll
        self.workers = runtime.workers or cores()
        self._pool = None  # the workers' threads, made on the first batch that uses them
        # ort_threads=None: the network on `workers` threads for photos on the calling thread (made on first
        # use), on `predictor`'s one in the workers' threads (_in_worker); else `predictor` everywhere
        self._alone = None if runtime.ort_threads is None and self.workers > 1 else predictor
        self._alone_lock, self._local = threading.Lock(), threading.local()

    @classmethod
    def from_file(cls, path=None, faces=DEFAULT_FACES, **options) -> "Detector":
        """`path`: a .onnx from `keypoints export` (runs under ONNX Runtime, int8 or not as the file was
        written), or None for the shipped model in the file `backend` runs. `face_options` change the
        face stage's knobs (min_score=..., max_side=...); the rest are the Detector's settings."""
        settings, face_options = partition(options)
        faces = load_faces(faces, **face_options)
        predictor = None
        if path is not None:
            _, runtime = split_settings(settings)
            kind, path = resolve_backend(runtime.backend, runtime.device, path)
            if kind != "onnxruntime":
                raise KeypointsError(f"{path}: a checkpoint runs in torch: keypoints.Detector.from_checkpoint, with "
                                     "pip install 'keypoints[train]'")
            predictor = OnnxPredictor.from_file(path, runtime.device, runtime.session_threads)
        # by keyword: keypoints.Detector (keypoints.detect) inherits this, and its __init__ takes a module first
        return cls(predictor=predictor, faces=faces, **settings)

    def __call__(self, image) -> list[Face]:
        """A path, or an array as OpenCV reads it (BGR, grayscale or BGRA, any size) -> faces."""
        return self.detect_many([image])[0]

    def detect_many(self, images: list) -> list[list[Face]]:
        """Several photos (a list of paths or arrays), their faces through the network together: one
        batch per pass; with `workers` > 1, the photos are dealt to that many threads in turn, each
        running the whole pipeline on its share (ONNX Runtime and OpenCV work outside Python's lock)."""
        if isinstance(images, (str, Path, np.ndarray)):
            raise KeypointsError(f"detect_many takes a list of photos, got one {type(images).__name__}: "
                                 "call the detector itself for one photo, det(photo)")
        parts = min(self.workers, len(images)) if self._shareable() else 1
        if parts <= 1:
            return self._detect_together(images)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="keypoints-worker")
        shares = list(self._pool.map(self._in_worker, [images[k::parts] for k in range(parts)]))
        return [shares[i % parts][i // parts] for i in range(len(images))]

    def _in_worker(self, images: list) -> list[list[Face]]:
        """A worker thread's share of a batch: the network on one thread, as the other workers use the other cores."""
        self._local.predictor = self.predictor
        return self._detect_together(images)

    def _network(self):
        """The keypoint network for this thread: a worker's (one ONNX Runtime thread), or the one for
        photos on the calling thread (`workers` threads when ort_threads is None)."""
        worker = getattr(self._local, "predictor", None)
        if worker is not None:
            return worker
        if self._alone is None:
            with self._alone_lock:
                if self._alone is None:
                    self._alone = self.predictor.with_threads(self.workers) if isinstance(self.predictor, OnnxPredictor) else self.predictor
        return self._alone

    def _shareable(self) -> bool:
        """Whether threads may share this detector: its clock adds up one thread's stages, and only
        ONNX Runtime's sessions (the network's, YuNet's) take calls from several threads at once."""
        return self.clock is untimed and isinstance(self.predictor, OnnxPredictor) and self.faces.thread_safe

    def _detect_together(self, images: list) -> list[list[Face]]:
        images = [read_image(im, self.max_pixels) if isinstance(im, (str, Path)) else self._array(im, f"photo {i}")
                  for i, im in enumerate(images)]
        with self.clock("face stage"):
            found = [self.faces(image) for image in images]
        owners = [i for i, faces in enumerate(found) for _ in faces]
        points = self.keypoints([images[i] for i in owners], [face for faces in found for face in faces])
        out, k = [], 0
        with self.clock("pose"):
            every = [f for faces in found for f in faces]
            fitted = Face.fitted([f.box for f in every], [f.score for f in every], list(points))
            for faces in found:
                out.append(fitted[k:k + len(faces)])
                k += len(faces)
        return out

    def _array(self, image, source: str) -> np.ndarray:
        """An array within the pixel budget (`max_pixels`), as a file is: a 20000 x 20000 array would
        take gigabytes more in its BGR copy and the face stage's."""
        if isinstance(image, np.ndarray) and image.ndim >= 2:
            check_pixels(image.shape[0] * image.shape[1], self.max_pixels, source)
        return to_bgr(image, source)

    def keypoints(self, images: list[np.ndarray], faces: list) -> np.ndarray:
        """Found faces (keypoints.inference.faces.FoundFace), each with the BGR image it is in -> (N, 68, 2)
        keypoints in those images' pixels."""
        if not faces:
            return np.zeros((0, 68, 2), np.float32)
        if self.frame is None:
            # the seed models never saw a mirror image in training: no flip averaging for them
            framing = self.faces.framing
            with self.clock("first frame"):
                frames = [geometry.framed_box_to_input(f.box, self.size, **framing) for f in faces]
            return self.predict_crops(images, frames, stage="network, pass 1")
        with self.clock("first frame"):
            frames = [self._first_frame(f) for f in faces]
        points = self.predict_crops(images, frames, self.flip, "network, pass 1")
        for n in range(self.refine):
            points, frames = self._refine(images, points, frames, f"network, pass {n + 2}")
        return points

    def _refine(self, images: list[np.ndarray], points: np.ndarray, frames: list[np.ndarray],
                stage: str) -> tuple[np.ndarray, list[np.ndarray]]:
        """One more pass, framed on the keypoints of the pass before, for the faces whose new frame is
        more than `refine_min_move` away from their last one (geometry.frame_move): where it barely
        moves, the new crop is the old one and so would be its keypoints. -> the keypoints and each
        face's frame."""
        with self.clock("re-frame"):
            framed = self._framed(points)
            new = {i: self._frame_on(points[i]) for i in framed}
            moved = [i for i in framed if geometry.frame_move(frames[i], new[i], self.size) > self.refine_min_move]
        points, frames = points.copy(), list(frames)
        if moved:
            points[moved] = self.predict_crops([images[i] for i in moved], [new[i] for i in moved], self.flip, stage)
            for i in moved:
                frames[i] = new[i]
        return points, frames

    def follow(self, images: list[np.ndarray], points: np.ndarray) -> np.ndarray:
        """Faces followed into new frames from their keypoints in the frames before (N, 68, 2): one
        pass each, framed as `refine` frames a face (keypoints.inference.video). Face-crop models only."""
        if self.frame is None:
            raise KeypointsError(f"{self.architecture}: a whole-frame model cannot follow faces from their keypoints")
        framed = self._framed(points)
        points = points.copy()
        if len(framed):
            points[framed] = self.predict_crops([images[i] for i in framed], [self._frame_on(points[i]) for i in framed], self.flip)
        return points

    @staticmethod
    def _framed(points: np.ndarray) -> list[int]:
        """The faces whose points frame a face: points collapsed to a spot (an untrained model's) frame
        none, and those faces keep their points."""
        return [int(i) for i in np.flatnonzero(np.ptp(points, axis=1).max(axis=1) >= 1.0)]

    def _frame_on(self, points: np.ndarray) -> np.ndarray:
        """The face-crop frame on a face's own keypoints (upright by their eyes, as in training; not
        a profile's, whose eyes say little of the roll: the face stage's `max_nose_offset`)."""
        limit = self.faces.max_nose_offset
        profile = limit is not None and abs(nose_offset(points)) > limit
        return self.frame(points, roll(points) if self.upright and not profile else 0.0)

    def keypoint_square(self, face) -> tuple[np.ndarray, float]:
        """The keypoints' box that a face box predicts (the stage's `keypoint_box`): centre, side."""
        k, (x, y, w, h) = self.faces.keypoint_box, face.box
        side, angle = max(w, h), face.roll if self.upright else 0.0
        shift = geometry.rotation(angle) @ np.array([k["shift_x"], k["shift_y"]]) * side  # upright frame -> photo
        return np.array([x + w / 2.0, y + h / 2.0]) + shift, k["side"] * side

    def _first_frame(self, face) -> np.ndarray:
        """The face-crop frame around the keypoint box that a face box predicts, turned by the face's roll."""
        centre, side = self.keypoint_square(face)
        return geometry.square_to_input(centre, self.frame.scale * side, self.size, face.roll if self.upright else 0.0)

    def predict_crops(self, images: list[np.ndarray], to_input: list[np.ndarray], flip: bool = False,
                      stage: str = "network") -> np.ndarray:
        """The network on the crops that the affines cut out of their images, all in one batch (with
        their mirror images when `flip`) -> (N, 68, 2) keypoints in the images' pixels. `stage`:
        the name the clock times the network under."""
        with self.clock("crop"):
            crops = np.stack([self._convert(geometry.crop(image, a, self.size, gray=self.to_input.grayscale)) for image, a in zip(images, to_input)])
            if flip:
                # the mirror image's crop is the crop turned left-right (`mirror` maps x -> size - x, which on
                # pixel centres is column i -> size - 1 - i): no second cut out of the photo
                mirror = geometry.square_to_input((self.size / 2, self.size / 2), self.size, self.size, mirror=True)
                crops, to_input = np.concatenate([crops, crops[..., ::-1]]), to_input + [geometry.compose(mirror, a) for a in to_input]
        with self.clock(stage):
            normalised = self._network()(crops)
        with self.clock("map back"):
            points = np.stack([geometry.apply(geometry.invert(a), geometry.denormalize(p, self.size))
                               for a, p in zip(to_input, normalised)])
            if flip:
                n = len(points) // 2
                points = (points[:n] + points[n:, FLIP]) / 2  # the mirror's point i is the face's FLIP[i]
        return points.astype(np.float32)

    def _convert(self, crop: np.ndarray) -> np.ndarray:
        """S x S BGR crop -> (C, S, S) float32, as KeypointsDataset hands images to the model."""
        return to_chw(self.to_input(crop))
