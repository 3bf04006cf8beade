"""Keypoint-aware augmentation pipelines (albumentations); each ends in a float image in [0, 1]."""

import warnings

import albumentations as A

from keypoints.inference import pipeline


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


def face_train(grayscale: bool = True, brightness: float = 0.3, contrast: float = 0.3, blur: float = 0.2,
               occlusion: float = 0.3) -> A.Compose:
    """Face crops (already framed and warped by keypoints.inference.framing): light, blur and occlusion
    only; the geometric augmentation (scale, shift, rotation, mirror) lives in the frame."""
    return _compose([
        A.RandomBrightnessContrast(brightness_limit=brightness, contrast_limit=contrast, p=0.8),
        A.GaussianBlur(blur_limit=(3, 5), p=blur),
        A.CoarseDropout(num_holes_range=(1, 2), hole_height_range=(0.1, 0.3), hole_width_range=(0.1, 0.3),
                        fill=0, p=occlusion),  # a hand, a microphone, a scarf
        *_finish(grayscale),
    ])  # fmt: skip


def face_eval(grayscale: bool = True) -> A.Compose:
    """Face crops at test time: nothing but the model's input format."""
    with warnings.catch_warnings():  # "no transform to process keypoints": right, none moves them
        warnings.simplefilter("ignore", UserWarning)
        return _compose(_finish(grayscale))


to_chw = pipeline.to_chw  # one definition, shared with inference
