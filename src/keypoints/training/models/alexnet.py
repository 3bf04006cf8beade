"""The seed's AlexNet variant: 1x227x227 grayscale face in, 68 (x, y) pairs out.

The seed text lists conv5 with 384 filters yet flattens 6x6x256 = 9216 features. We follow
AlexNet: conv5 has 256 filters and a 3/2 max-pool precedes the flatten, which makes the shapes
consistent (227 -conv1-> 56 -pool-> 27 -pool-> 13 -pool-> 6).
"""

from torch import nn

from keypoints.training.models.init import start_at_centre
from keypoints.training.models.dropout import stage_rates


def conv(cin: int, cout: int, k: int, stride: int = 1, pad: int = 0, bn: bool = True) -> list[nn.Module]:
    layers = [nn.Conv2d(cin, cout, k, stride, pad), nn.ELU()]
    return layers + [nn.BatchNorm2d(cout)] if bn else layers


def fc(cin: int, cout: int, p: float) -> list[nn.Module]:
    return [nn.Linear(cin, cout), nn.ELU(), nn.BatchNorm1d(cout), nn.Dropout(p)]


class AlexNet(nn.Module):
    def __init__(self, dropout: float | list[float] = (0.2, 0.4, 0.6), in_channels: int = 1, num_points: int = 68):
        super().__init__()
        p1, p_conv, p_fc = stage_rates(dropout, 3)
        self.features = nn.Sequential(
            *conv(in_channels, 96, 4, stride=4, bn=False), nn.MaxPool2d(3, 2), nn.Dropout(p1),
            *conv(96, 256, 5, pad=2), nn.MaxPool2d(3, 2),
            *conv(256, 384, 3, pad=1), nn.Dropout(p_conv),
            *conv(384, 384, 3, pad=1), nn.Dropout(p_conv),
            *conv(384, 256, 3, pad=1), nn.Dropout(p_conv), nn.MaxPool2d(3, 2),
        )  # fmt: skip
        self.head = nn.Sequential(
            nn.Flatten(), *fc(6 * 6 * 256, 4096, p_fc), *fc(4096, 4096, p_fc), nn.Linear(4096, num_points * 2)
        )
        self.num_points = num_points
        start_at_centre(self.head[-1])

    def forward(self, x):
        return self.head(self.features(x)).view(-1, self.num_points, 2)
