"""Keypoint-aware augmentation pipelines (albumentations); each ends in a float image in [0, 1]."""

import albumentations as A
import numpy as np


def _compose(steps: list) -> A.Compose:
    # remove_invisible=False: a point pushed outside the crop is kept (the model must still predict it).
    return A.Compose(steps, keypoint_params=A.KeypointParams(format="xy", remove_invisible=False))


def _finish(grayscale: bool) -> list:
    steps = [A.ToGray(num_output_channels=1, p=1.0)] if grayscale else []
    return steps + [A.ToFloat(max_value=255.0)]


def seed_train(input_size: int, crop_fraction: float = 0.908, grayscale: bool = True) -> A.Compose:
    """The seed's training pipeline: resize to input_size / crop_fraction (227 -> 250), random crop."""
    resize = round(input_size / crop_fraction)
    return _compose([A.Resize(resize, resize), A.RandomCrop(input_size, input_size), *_finish(grayscale)])


def seed_eval(input_size: int, grayscale: bool = True) -> A.Compose:
    """The seed's test pipeline: resize straight to the input size."""
    return _compose([A.Resize(input_size, input_size), *_finish(grayscale)])


def to_chw(pixels: np.ndarray) -> np.ndarray:
    """A pipeline's output, (S, S) gray or (S, S, C), as the (C, S, S) float32 the models take."""
    pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    return np.ascontiguousarray(pixels, np.float32)
