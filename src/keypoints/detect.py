"""Photo -> faces -> 68 keypoints each, in the photo's pixels.

    det = keypoints.Detector.from_checkpoint("model.ckpt")
    for face in det("photo.jpg"):
        print(face.box, face.score, face.keypoints.shape)  # (x, y, w, h), float, (68, 2)

Faces come from OpenCV's Haar cascade; each box is framed the way the model's training images
framed a face (see conf/detector/haar.yaml), cut out through `geometry`, and all faces of a photo
go through the network in one batch.
"""

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch
from hydra.utils import instantiate

from keypoints import geometry
from keypoints.data.transforms import to_chw
from keypoints.errors import KeypointsError
from keypoints.io import read_image, to_bgr
from keypoints.landmarks import FLIP
from keypoints.module import KeypointModule, load_checkpoint
from keypoints.predictors import make_predictor

# Haar box -> the seed's whole-frame framing, and -> the keypoints' bounding box (longer side, centre
# shift; in box sides), measured by `measure_framing` below (figures: conf/detector/haar.yaml).
FRAMING = {"scale": 2.16, "shift_x": 0.0, "shift_y": 0.05}
KEYPOINT_BOX = {"side": 0.878, "shift_x": -0.006, "shift_y": 0.158}
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


@dataclass
class Face:
    box: tuple[int, int, int, int]  # x, y, w, h in the photo's pixels
    score: float | None  # the cascade's last-stage weight: higher is surer; not a probability
    keypoints: np.ndarray  # (68, 2) float32, x and y in the photo's pixels

    def to_json(self) -> dict:
        return {"box": [int(v) for v in self.box], "score": None if self.score is None else float(self.score),
                "keypoints": self.keypoints.astype(float).round(2).tolist()}


class FaceDetector:
    """OpenCV's Haar cascade. It runs on a copy whose longest side is at most `max_side` and ignores
    faces smaller than `min_size` px or `min_size_fraction` of the shorter side: on a full-size
    3648 px photo it also "finds" faces in drums and shirts."""

    def __init__(self, cascade: str = "haarcascade_frontalface_default.xml", scale_factor: float = 1.1,
                 min_neighbors: int = 5, min_size: int = 30, min_size_fraction: float = 0.05, max_side: int = 1000):
        path = Path(cascade) if Path(cascade).is_file() else Path(cv2.data.haarcascades) / cascade
        self.classifier = cv2.CascadeClassifier(str(path))
        if self.classifier.empty():
            raise KeypointsError(f"{cascade}: not a Haar cascade (detector.cascade=a file in {cv2.data.haarcascades} or a path)")
        self.scale_factor, self.min_neighbors = scale_factor, min_neighbors
        self.min_size, self.min_size_fraction, self.max_side = min_size, min_size_fraction, max_side

    def __call__(self, image: np.ndarray) -> list[tuple[tuple[int, int, int, int], float]]:
        """BGR image -> [(box, score)], left to right, boxes in the image's pixels."""
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        f = min(1.0, self.max_side / max(gray.shape))
        if f < 1.0:
            gray = cv2.resize(gray, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        side = max(self.min_size, round(self.min_size_fraction * min(gray.shape)))
        if min(gray.shape) < side:
            return []
        # outputRejectLevels gives each box a confidence (the same boxes as detectMultiScale).
        boxes, _, weights = self.classifier.detectMultiScale3(
            gray, self.scale_factor, self.min_neighbors, minSize=(side, side), outputRejectLevels=True)
        height, width = image.shape[:2]
        found = []
        for (x, y, w, h), weight in zip(np.asarray(boxes).reshape(-1, 4) / f, np.ravel(weights)):
            x, y = max(0, round(x)), max(0, round(y))  # back to full size; rounding stays inside the photo
            found.append(((x, y, min(round(w), width - x), min(round(h), height - y)), float(weight)))
        return sorted(found, key=lambda found_box: found_box[0][0])


class Detector:
    """A landmark model behind a face detector: `Detector.from_checkpoint(path)(image) -> [Face]`.

    Whole-frame models (the seed's) see a square `framing` around the Haar box. Face-crop models
    (trained with `data=face`) see the frame they were trained on: a first pass frames the face
    from the keypoint box that the Haar box predicts (`keypoint_box`), then `refine` more passes
    frame it from the model's own keypoints, exactly as in training; `flip` averages each pass
    with its mirror image (labels swapped back).
    """

    def __init__(self, module: KeypointModule | None = None, faces: FaceDetector | None = None, framing: dict | None = None,
                 device: str | torch.device = "cpu", backend: str = "torch", keypoint_box: dict | None = None,
                 refine: int = 1, flip: bool = True):
        module = load_checkpoint() if module is None else module.eval()  # None: the shipped default model
        self.module = module
        self.predict = make_predictor(module, backend, device)  # inputs -> normalised keypoints
        self.faces = faces or FaceDetector()
        self.size = module.hparams.input_size
        data_config = module.hparams.get("data_config") or {}
        self.framing = {**FRAMING, **(framing or {})}
        self.keypoint_box = {**KEYPOINT_BOX, **(keypoint_box or {})}
        self.frame = instantiate(data_config["eval_frame"]) if data_config.get("eval_frame") else None
        self.refine, self.flip = refine, flip
        # The model's own eval pipeline turns a crop into its input (grayscale, [0, 1], ...).
        self.to_input = instantiate(data_config["eval_transform"]) if "eval_transform" in data_config else None

    @classmethod
    def from_checkpoint(cls, path=None, device: str | torch.device = "cpu", framing: dict | None = None,
                        backend: str = "torch", keypoint_box: dict | None = None, refine: int = 1,
                        flip: bool = True, **face_detector) -> "Detector":
        """`path` None: the shipped default model. `face_detector` keywords go to FaceDetector
        (scale_factor=..., min_neighbors=..., ...)."""
        return cls(load_checkpoint(path), FaceDetector(**face_detector), framing, device, backend,
                   keypoint_box, refine, flip)

    def __call__(self, image) -> list[Face]:
        """A path, or an array as OpenCV reads it (BGR, grayscale or BGRA, any size) -> faces."""
        image = read_image(image) if isinstance(image, (str, Path)) else to_bgr(np.asarray(image))
        found = self.faces(image)
        points = self.keypoints(image, [box for box, _ in found])
        return [Face(box, score, p) for (box, score), p in zip(found, points)]

    def keypoints(self, image: np.ndarray, boxes: list) -> np.ndarray:
        """BGR image and face boxes -> (N, 68, 2) keypoints in the image's pixels."""
        if not boxes:
            return np.zeros((0, 68, 2), np.float32)
        if self.frame is None:
            # the seed models never saw a mirror image in training: no flip averaging for them
            return self.run(image, [geometry.framed_box_to_input(box, self.size, **self.framing) for box in boxes])
        points = self.run(image, [self._first_frame(box) for box in boxes], self.flip)
        for _ in range(self.refine):
            points = self.run(image, [self.frame(p) for p in points], self.flip)
        return points

    def _first_frame(self, box) -> np.ndarray:
        """The face-crop frame around the keypoint box that a Haar box predicts."""
        x, y, w, h = box
        k = self.keypoint_box
        centre = (x + w / 2 + k["shift_x"] * w, y + h / 2 + k["shift_y"] * w)
        return geometry.square_to_input(centre, self.frame.scale * k["side"] * w, self.size)

    def run(self, image: np.ndarray, to_input: list[np.ndarray], flip: bool = False) -> np.ndarray:
        """The network on the crops that the affines cut out of `image`, all in one batch (with their
        mirror images when `flip`) -> (N, 68, 2) keypoints in the image's pixels."""
        if flip:
            mirror = geometry.square_to_input((self.size / 2, self.size / 2), self.size, self.size, mirror=True)
            to_input = to_input + [geometry.compose(mirror, a) for a in to_input]
        crops = [self._convert(geometry.crop(image, a, self.size)) for a in to_input]
        normalised = self.predict(np.stack(crops))
        points = np.stack([geometry.apply(geometry.invert(a), geometry.denormalize(p, self.size))
                           for a, p in zip(to_input, normalised)])
        if flip:
            n = len(points) // 2
            points = (points[:n] + points[n:, FLIP]) / 2  # the mirror's point i is the face's FLIP[i]
        return points.astype(np.float32)

    def _convert(self, crop: np.ndarray) -> np.ndarray:
        """S x S BGR crop -> (C, S, S) float32, as KeypointsDataset hands images to the model."""
        pixels = self.to_input(image=crop)["image"] if self.to_input else crop.astype(np.float32) / 255.0
        return to_chw(pixels)


def load_detector(cfg, ckpt_path: str | None = None) -> Detector:
    """The CLIs' one way to a Detector; `ckpt_path` None: the model shipped with the package."""
    model_stage = ("framing", "keypoint_box", "refine", "flip")
    knobs = {k: v for k, v in cfg.detector.items() if k not in model_stage}
    return Detector.from_checkpoint(ckpt_path, device=cfg.get("device", "cpu"),
                                    framing=dict(cfg.detector.get("framing") or {}),
                                    keypoint_box=dict(cfg.detector.get("keypoint_box") or {}),
                                    refine=cfg.detector.get("refine", 1), flip=cfg.detector.get("flip", True),
                                    backend=cfg.get("backend", "torch"), **knobs)


def record(faces: list[Face], pixels: np.ndarray, **source) -> dict:
    """The JSON record of one image (or video frame); `source` says which (image=..., or video=..., frame=...)."""
    height, width = pixels.shape[:2]
    return {**source, "width": width, "height": height, "faces": [face.to_json() for face in faces]}


Render = Callable[[np.ndarray, list[Face]], np.ndarray]


def run(cfg, render: Render, write_json: bool = True) -> None:
    """CLI body: every image of `cfg.input` (an image, a folder, or a video) through the detector;
    writes `<stem>.png` (what `render` draws) and `<stem>.json` into `cfg.output`. In a folder, a
    file that fails is reported and skipped, and the run fails at the end with a summary."""
    source, out = Path(cfg.input), Path(cfg.output)
    if not source.exists():
        raise KeypointsError(f"{source}: input not found (input=an image, a folder of images or a video file)")
    files = [source]
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.is_file() and not p.name.startswith("."))
        if not files:
            raise KeypointsError(f"{source}: folder has no files (input=an image, a folder of images or a video file)")
    detector = load_detector(cfg, cfg.ckpt_path)
    out.mkdir(parents=True, exist_ok=True)
    failures = []
    for path in files:
        try:
            if path.suffix.lower() in VIDEO_SUFFIXES:
                _video(path, out, detector, render, write_json)
            else:
                _image(path, out, detector, render, write_json)
        except KeypointsError as e:
            if not source.is_dir():
                raise
            print(f"error: {e}", file=sys.stderr)
            reason = str(e).removeprefix(f"{path}: ").split(" (")[0]  # the full message is printed above
            failures.append(f"{path.name} ({reason})")
    if failures:
        raise KeypointsError(f"{len(failures)} of {len(files)} files failed: {', '.join(failures)}")


def _image(path: Path, out: Path, detector: Detector, render: Render, write_json: bool) -> None:
    image = read_image(path)
    faces = detector(image)
    if not cv2.imwrite(str(out / f"{path.stem}.png"), render(image, faces)):
        raise KeypointsError(f"{out / path.stem}.png: could not write (is output= a writable folder?)")
    if write_json:
        (out / f"{path.stem}.json").write_text(json.dumps(record(faces, image, image=str(path))) + "\n")
    print(f"{path.name}: {len(faces)} face(s)")


def _video(path: Path, out: Path, detector: Detector, render: Render, write_json: bool) -> None:
    """`<stem>.mp4` with every frame rendered, and one JSON line per frame in `<stem>.jsonl`."""
    capture = cv2.VideoCapture(str(path))
    ok, frame = capture.read()
    if not ok:
        capture.release()
        raise KeypointsError(f"{path}: not a readable video (empty, corrupt or an unsupported codec)")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    height, width = frame.shape[:2]
    writer = cv2.VideoWriter(str(out / f"{path.stem}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        capture.release()
        raise KeypointsError(f"{out / path.stem}.mp4: OpenCV cannot write an mp4v video here (is output= writable?)")
    lines = open(out / f"{path.stem}.jsonl", "w") if write_json else None
    index = 0
    try:
        while ok:
            faces = detector(frame)
            writer.write(render(frame, faces))
            if lines:
                lines.write(json.dumps(record(faces, frame, video=str(path), frame=index)) + "\n")
            index += 1
            ok, frame = capture.read()
    finally:
        capture.release()
        writer.release()
        if lines:
            lines.close()
    print(f"{path.name}: {index} frame(s)")


def measure_framing(root, n: int = 300, seed: int = 0, faces: FaceDetector | None = None) -> dict:
    """Medians over `n` random training frames of how each frame (and its keypoints' bounding box)
    sits around the Haar box of its labelled face, in box sides: where `framing` comes from.

    python -c "from keypoints.detect import measure_framing as m; print(m('../shared/data/facial-keypoints'))"
    """
    from keypoints.data import read_annotations

    faces, root = faces or FaceDetector(), Path(root)
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
