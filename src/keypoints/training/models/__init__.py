from torch import nn

from keypoints.core.errors import KeypointsError
from keypoints.training.models.alexnet import AlexNet
from keypoints.training.models.mobile import MobileRegressor
from keypoints.training.models.naimish import NaimishNet
from keypoints.training.models.resnet import ResNetRegressor

__all__ = ["AlexNet", "MobileRegressor", "NaimishNet", "ResNetRegressor", "first_conv"]


def first_conv(module: nn.Module) -> nn.Conv2d:
    """A model's first convolution: its input channels (1 grayscale, 3 colour) and the kernels viz draws."""
    conv = next((m for m in module.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None:
        raise KeypointsError(f"{type(getattr(module, 'net', module)).__name__}: no Conv2d layer")
    return conv
