"""keypoints: 68-point facial landmarks, and the framework that trains the models behind them."""

from keypoints.errors import KeypointsError

__all__ = ["KeypointsError"]
