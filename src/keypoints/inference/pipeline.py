"""A model's eval pipeline, as its checkpoint or exported file records it (`data_config`), on NumPy and
OpenCV: how a crop becomes the network's input, and how a face is framed.

Training composes these with albumentations (keypoints.training.data.transforms); at inference the same steps
are a grayscale conversion and a scale to [0, 1] (tests/test_inference.py checks they give the same
arrays). A file from outside names its pipeline by `_target_`; only the names below are read, and
nothing is imported or instantiated by name.
"""

import cv2
import numpy as np

from keypoints.core.errors import KeypointsError
from keypoints.inference.framing import FaceFrame


def to_chw(pixels: np.ndarray) -> np.ndarray:
    """A pipeline's output, (S, S) gray or (S, S, C), as the (C, S, S) float32 the models take."""
    pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    return np.ascontiguousarray(pixels, np.float32)


class EvalTransform:
    """crop (H, W, 3) or (H, W) uint8 -> float32 in [0, 1], resized to `size` (the seed's whole-frame
    pipeline) or not (face crops), grayscale or not, as albumentations' Resize, ToGray and ToFloat do
    (ToGray weighs the channels as RGB: the models were trained on OpenCV's BGR arrays read that way)."""

    def __init__(self, size: int | None = None, grayscale: bool = True):
        self.size, self.grayscale = size, grayscale

    def __call__(self, crop: np.ndarray) -> np.ndarray:
        if self.size is not None and crop.shape[:2] != (self.size, self.size):
            crop = cv2.resize(crop, (self.size, self.size), interpolation=cv2.INTER_LINEAR)
        if self.grayscale and crop.ndim == 3:
            crop = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
        return crop.astype(np.float32) / 255.0


def _face_eval(grayscale: bool = True) -> EvalTransform:
    return EvalTransform(None, grayscale)


def _seed_eval(input_size: int, grayscale: bool = True) -> EvalTransform:
    return EvalTransform(input_size, grayscale)


# The eval pipelines and frames a model may name (old and new module names alike).
TRANSFORMS = {f"keypoints.{package}.transforms.{name}": build
              for package in ("data", "training.data")  # files written before the training wing (2026-12-07) say keypoints.data
              for name, build in (("face_eval", _face_eval), ("seed_eval", _seed_eval))}
FRAMES = {"keypoints.data.framing.FaceFrame": FaceFrame, "keypoints.inference.framing.FaceFrame": FaceFrame}


def _build(config: dict, known: dict, key: str, path):
    target = config.get("_target_")
    if target not in known:
        raise KeypointsError(f"{path}: refused: its config names _target_={str(target)[:120]!r} (data_config.{key}), "
                             f"not one of the eval pipelines keypoints knows ({', '.join(sorted(known))})")
    try:
        return known[target](**{k: v for k, v in config.items() if k != "_target_"})
    except TypeError as e:
        raise KeypointsError(f"{path}: data_config.{key}: {e}") from None


def eval_pipeline(data_config: dict, path) -> tuple[EvalTransform, FaceFrame | None]:
    """(crop -> input, the face-crop frame or None for whole-frame models) from a model's data config."""
    transform = data_config.get("eval_transform")
    to_input = _build(transform, TRANSFORMS, "eval_transform", path) if transform else EvalTransform(None, False)
    frame = data_config.get("eval_frame")
    return to_input, (_build(frame, FRAMES, "eval_frame", path) if frame else None)
