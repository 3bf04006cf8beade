from keypoints.models.alexnet import AlexNet
from keypoints.models.naimish import NaimishNet

__all__ = ["AlexNet", "NaimishNet"]
