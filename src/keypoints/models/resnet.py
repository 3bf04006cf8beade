"""A compact ResNet-style regressor for face crops (3.1 M parameters as conf/model/resnet.yaml sets it).

A stride-2 stem and stages of basic residual blocks (two 3x3 convolutions with batch norm) take a 112 px crop
down to 7x7; a 1x1 convolution narrows the channels and one linear layer reads all 68 points from
the whole 7x7 map, keeping where each feature was (global pooling would throw that away).
"""

import torch
from torch import nn
from torch.nn import functional as F

from keypoints.models.init import start_at_centre


def conv_bn(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(conv_bn(cin, cout, 3, stride), nn.ReLU(inplace=True), conv_bn(cout, cout))
        self.shortcut = nn.Identity() if cin == cout and stride == 1 else conv_bn(cin, cout, 1, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class ResNetRegressor(nn.Module):
    def __init__(self, input_size: int = 112, widths=(32, 64, 128, 256), blocks=(0, 1, 2, 2), head_channels: int = 64,
                 dropout: float = 0.0, in_channels: int = 1, num_points: int = 68):
        super().__init__()
        layers = [conv_bn(in_channels, widths[0], 3, 2), nn.ReLU(inplace=True)]  # stem: /2
        cin = widths[0]
        for i, (width, n) in enumerate(zip(widths, blocks)):
            for j in range(n):  # every stage but the first halves the resolution in its first block
                layers.append(BasicBlock(cin, width, 2 if i > 0 and j == 0 else 1))
                cin = width
        layers += [conv_bn(cin, head_channels, 1), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        side = input_size // 2 ** len(widths)  # 112 -> 7
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(head_channels * side * side, num_points * 2))
        self.num_points = num_points
        start_at_centre(self.head[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.features(x)
        # The last layer stays float32 under bf16 autocast: its outputs are the keypoints, and bf16
        # would round them to about 1/100 of the face. It is 0.1% of the work.
        with torch.autocast(x.device.type, enabled=False):
            return self.head(features.float()).view(-1, self.num_points, 2)

    def resized_state(self, state: dict) -> dict:
        """Another input size's weights for this one: the convolutions fit any size; the head's weights
        over the map (side s) are resampled to this map's side (bilinear) and scaled by (s / side)^2, so
        a face seen larger reads the same features where they now are. A start for fine-tuning."""
        key = "head.2.weight"
        weight, target = state[key], self.head[2].weight
        if weight.shape == target.shape:
            return state
        channels = self.features[-2][0].out_channels
        old, new = round((weight.shape[1] / channels) ** 0.5), round((target.shape[1] / channels) ** 0.5)
        maps = weight.reshape(weight.shape[0], channels, old, old)
        resized = F.interpolate(maps, size=(new, new), mode="bilinear", align_corners=False) * (old / new) ** 2
        return {**state, key: resized.reshape(target.shape)}
