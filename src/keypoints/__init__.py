"""keypoints: 68-point facial landmarks, and the framework that trains the models behind them."""

from keypoints.core.errors import KeypointsError

__all__ = ["KeypointsError"]


def __getattr__(name: str):
    # `keypoints.Detector` without paying for torch and OpenCV on `import keypoints`.
    if name == "Detector":
        from keypoints.detect import Detector

        return Detector
    raise AttributeError(f"module 'keypoints' has no attribute {name!r}")
