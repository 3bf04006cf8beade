"""A MobileNetV2-style regressor for face crops (0.75 M parameters as conf/model/mobile.yaml sets it).

A stride-2 stem and stages of inverted residual blocks (Sandler et al., CVPR 2018: a 1x1 convolution
widens the channels `expansion` times, a 3x3 depthwise one filters each channel alone, a 1x1 one narrows
them back) take a 96 px crop down to 6x6; a 1x1 convolution narrows the channels and one linear layer
reads the 68 points, as ResNetRegressor's regression head does. Depthwise filters cost a fraction of full
3x3 convolutions: under ONNX Runtime this network is ~2.6x faster than the ResNet in int8, and in float
faster than the ResNet in int8 (docs/RESULTS.md, "Other runtimes, threads that stop spinning, and distillation").
"""

import torch
from torch import nn

from keypoints.training.models.init import start_at_centre
from keypoints.training.models.resnet import conv_bn


def conv_bn_relu6(cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(*conv_bn(cin, cout, kernel, stride, groups), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expansion: int):
        super().__init__()
        mid = cin * expansion
        # no activation after the narrowing: a ReLU there would zero part of a low-dimensional code (the paper's "linear bottleneck")
        self.body = nn.Sequential(conv_bn_relu6(cin, mid), conv_bn_relu6(mid, mid, 3, stride, groups=mid), conv_bn(mid, cout, 1))
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


class MobileRegressor(nn.Module):
    def __init__(self, input_size: int = 96, widths=(32, 64, 128), blocks=(2, 3, 3), expansion: int = 4, stem: int = 16,
                 head_channels: int = 64, dropout: float = 0.0, in_channels: int = 1, num_points: int = 68):
        super().__init__()
        layers, cin = [conv_bn_relu6(in_channels, stem, 3, 2)], stem  # stem: /2
        for width, n in zip(widths, blocks):
            for j in range(n):  # each stage halves the resolution in its first block
                layers.append(InvertedResidual(cin, width, 2 if j == 0 else 1, expansion))
                cin = width
        layers.append(conv_bn_relu6(cin, head_channels))
        self.features = nn.Sequential(*layers)
        side = input_size // 2 ** (len(widths) + 1)  # 96 -> 6
        self.num_points = num_points
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(head_channels * side * side, num_points * 2))
        start_at_centre(self.head[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.features(x)
        with torch.autocast(x.device.type, enabled=False):  # the keypoints in float32, as ResNetRegressor's
            return self.head(features.float()).view(-1, self.num_points, 2)
