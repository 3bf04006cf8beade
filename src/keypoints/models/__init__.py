from keypoints.models.alexnet import AlexNet
from keypoints.models.naimish import NaimishNet
from keypoints.models.resnet import ResNetRegressor

__all__ = ["AlexNet", "NaimishNet", "ResNetRegressor"]
