"""NaimishNet (Agarwal et al. 2016, "Facial Key Points Detection using Deep Convolutional Neural
Network - NaimishNet"): 1x96x96 in, four conv blocks, two dense layers, 68 (x, y) pairs out."""

from torch import nn

from keypoints.training.models.init import start_at_centre
from keypoints.training.models.dropout import stage_rates


class NaimishNet(nn.Module):
    def __init__(self, dropout: float | list[float] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6), in_channels: int = 1, num_points: int = 68):
        super().__init__()
        rates = stage_rates(dropout, 6)
        blocks, cin = [], in_channels
        for cout, k, p in zip((32, 64, 128, 256), (4, 3, 2, 1), rates[:4]):
            blocks += [nn.Conv2d(cin, cout, k), nn.ELU(), nn.MaxPool2d(2, 2), nn.Dropout(p)]
            cin = cout
        self.features = nn.Sequential(*blocks)  # 96 -> 46 -> 22 -> 10 -> 5
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(256 * 5 * 5, 1000), nn.ELU(), nn.Dropout(rates[4]),
            nn.Linear(1000, 1000), nn.Dropout(rates[5]),  # the paper's dense2 is linear
            nn.Linear(1000, num_points * 2),
        )  # fmt: skip
        self.num_points = num_points
        start_at_centre(self.head[-1])

    def forward(self, x):
        return self.head(self.features(x)).view(-1, self.num_points, 2)
