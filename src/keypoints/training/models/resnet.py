"""A compact ResNet-style regressor for face crops (3.1 M parameters as conf/model/resnet.yaml sets it).

A stride-2 stem and stages of basic residual blocks (two 3x3 convolutions with batch norm) take a 112 px crop
down to 7x7; a 1x1 convolution narrows the channels. Two heads read the 68 points from there:
- `regression`: one linear layer over the whole 7x7 map, keeping where each feature was (global
  pooling would throw that away);
- `heatmap`: a small decoder brings the map back up to a quarter of the input (28x28 at 112 px) with the
  finer stages' features, one heatmap a point, read out as its expected position (soft-argmax,
  "integral regression"): the points come from where features are, not from a linear read of a
  coarse map, which is what caps a direct regressor's precision. The output is the same (B, 68, 2) in
  the same coordinates, so the loss, the export and the detector do not know which head it is.
"""

import torch
from torch import nn
from torch.nn import functional as F

from keypoints.core.errors import KeypointsError
from keypoints.training.models.init import start_at_centre


def conv_bn(cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(conv_bn(cin, cout, 3, stride), nn.ReLU(inplace=True), conv_bn(cout, cout))
        self.shortcut = nn.Identity() if cin == cout and stride == 1 else conv_bn(cin, cout, 1, stride)
        self.residual = True  # its output is a sum (ReLU'd), which an int8 export stores in 8 bits (keypoints.training.quantization_aware)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class HeatmapHead(nn.Module):
    """The 7x7 map upsampled twice, each time joined with the backbone's map of that size (U-Net
    style), to one heatmap a point at stride 4; each point is its heatmap's softmax-weighted mean position."""

    def __init__(self, channels: tuple[int, int, int], input_size: int, num_points: int, width: int = 48):
        super().__init__()
        c28, c14, c7 = channels
        self.up14 = nn.Sequential(conv_bn(c7 + c14, width), nn.ReLU(inplace=True))
        self.up28 = nn.Sequential(conv_bn(width + c28, width), nn.ReLU(inplace=True))
        self.heat = nn.Conv2d(width, num_points, 1)
        side, stride = input_size // 4, 4
        # a cell's centre in input pixels (pixel centres at integers: cell i covers 4i..4i+3), normalised
        # as keypoints.core.geometry.normalize does: (p - size / 2) / (size / 4)
        grid = ((torch.arange(side, dtype=torch.float32) * stride + (stride - 1) / 2) - input_size / 2) / (input_size / 4)
        self.register_buffer("grid", grid, persistent=False)

    def forward(self, f28: torch.Tensor, f14: torch.Tensor, f7: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(f7, size=f14.shape[-2:], mode="nearest")
        x = self.up14(torch.cat([x, f14], 1))
        x = F.interpolate(x, size=f28.shape[-2:], mode="nearest")
        x = self.up28(torch.cat([x, f28], 1))
        with torch.autocast(x.device.type, enabled=False):  # the read-out in float32, as the regression head
            return soft_argmax(self.heat(x.float()), self.grid)


def soft_argmax(heat: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """(B, K, H, W) logits -> (B, K, 2) expected (x, y), `grid` the cells' centres (H = W)."""
    b, k, h, w = heat.shape
    p = torch.softmax(heat.reshape(b, k, h * w), dim=-1).reshape(b, k, h, w)
    x_pos = (p.sum(dim=2) * grid[:w]).sum(dim=-1)  # the marginal over rows -> the expected column
    y_pos = (p.sum(dim=3) * grid[:h]).sum(dim=-1)
    return torch.stack([x_pos, y_pos], dim=-1)


class ResNetRegressor(nn.Module):
    def __init__(self, input_size: int = 112, widths=(32, 64, 128, 256), blocks=(0, 1, 2, 2), head_channels: int = 64,
                 dropout: float = 0.0, in_channels: int = 1, num_points: int = 68, head: str = "regression",
                 decoder_width: int = 48):
        super().__init__()
        if head not in ("regression", "heatmap"):
            raise KeypointsError(f"model.net.head: {head!r} is not one of regression, heatmap")
        layers = [conv_bn(in_channels, widths[0], 3, 2), nn.ReLU(inplace=True)]  # stem: /2
        cin = widths[0]
        for i, (width, n) in enumerate(zip(widths, blocks)):
            for j in range(n):  # every stage but the first halves the resolution in its first block
                layers.append(BasicBlock(cin, width, 2 if i > 0 and j == 0 else 1))
                cin = width
        layers += [conv_bn(cin, head_channels, 1), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        side = input_size // 2 ** len(widths)  # 112 -> 7
        self.num_points, self.head_kind = num_points, head
        if head == "heatmap":
            if len(widths) != 4 or blocks[1] == 0 or blocks[2] == 0:
                raise KeypointsError("model.net.head=heatmap needs four stages with blocks at 1/4 and 1/8 of the input")
            self.taps = self._taps()  # the layers whose outputs are the 28x28 and 14x14 maps
            self.heatmap = HeatmapHead((widths[1], widths[2], head_channels), input_size, num_points, decoder_width)
            return
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(head_channels * side * side, num_points * 2))
        start_at_centre(self.head[-1])

    def _taps(self) -> tuple[int, int]:
        """Indices in `features` of the last block at 1/4 and at 1/8 of the input."""
        strides, last = 2, {}
        for i, layer in enumerate(self.features):
            if isinstance(layer, BasicBlock):
                strides *= 2 if isinstance(layer.body[0][0], nn.Conv2d) and layer.body[0][0].stride == (2, 2) else 1
                last[strides] = i
        return last[4], last[8]

    def _fewer_blocks(self, state: dict) -> dict:
        """A deeper network's weights for this one when its stages have fewer blocks (model.net.blocks):
        each stage keeps the source's first blocks of that width, and the layers around the stages (stem,
        1x1 head) keep theirs. A residual block adds to what flows past it, so the network without the
        later blocks still works roughly, and fine-tuning starts close to the deeper one."""
        def layout(keys) -> tuple[list[int], list[int]]:  # the indices in `features` of other layers, of blocks
            index = sorted({int(k.split(".")[1]) for k in keys if k.startswith("features.")})
            blocks = {i for i in index if f"features.{i}.body.0.0.weight" in keys}
            return [i for i in index if i not in blocks], sorted(blocks)

        own = self.state_dict()
        if set(own) == set(state):
            return state
        (own_plain, own_blocks), (src_plain, src_blocks) = layout(own), layout(state)
        if len(own_plain) != len(src_plain):
            return state  # another stem or head: load_state_dict says what does not fit
        width = lambda s, i: s[f"features.{i}.body.2.0.weight"].shape[0]  # noqa: E731 - a block's output channels
        by_width: dict[int, list[int]] = {}
        for i in src_blocks:
            by_width.setdefault(width(state, i), []).append(i)
        taken: dict[int, int] = {}
        mapping = dict(zip(own_plain, src_plain))
        for i in own_blocks:
            w = width(own, i)
            n = taken.get(w, 0)  # this width's blocks given out so far
            if n >= len(by_width.get(w, [])):
                return state  # not a shallower copy of this network: load_state_dict says what does not fit
            mapping[i], taken[w] = by_width[w][n], n + 1
        renamed = {k: v for k, v in state.items() if not k.startswith("features.")}
        for i, j in mapping.items():
            prefix = f"features.{j}."
            renamed.update({f"features.{i}.{k[len(prefix):]}": v for k, v in state.items() if k.startswith(prefix)})
        return renamed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.head_kind == "heatmap":
            taps = []
            for i, layer in enumerate(self.features):
                x = layer(x)
                if i in self.taps:
                    taps.append(x)
            return self.heatmap(taps[0], taps[1], x).float()
        features = self.features(x)
        # The last layer stays float32 under bf16 autocast: its outputs are the keypoints, and bf16
        # would round them to about 1/100 of the face. It is 0.1% of the work.
        with torch.autocast(x.device.type, enabled=False):
            return self.head(features.float()).view(-1, self.num_points, 2)

    def resized_state(self, state: dict) -> dict:
        """Another input size's or head's weights for this one: the convolutions fit any size; the
        regression head's weights over the map (side s) are resampled to this map's side (bilinear) and
        scaled by (s / side)^2, so a face seen larger reads the same features where they now are. A
        heatmap head from a regressor: the backbone's weights, the decoder as initialised. A start for fine-tuning."""
        if self.head_kind == "heatmap":
            own = self.state_dict()
            if any(k.startswith("heatmap.") for k in state):
                return state
            return {**{k: v for k, v in state.items() if not k.startswith("head.")},
                    **{k: v for k, v in own.items() if k.startswith("heatmap.")}}
        if not any(k.startswith("head.") for k in state):
            return state  # a heatmap head's weights: load_state_dict names what does not fit
        state = self._fewer_blocks(state)
        key = "head.2.weight"
        weight, target = state[key], self.head[2].weight
        if weight.shape == target.shape:
            return state
        channels = self.features[-2][0].out_channels
        old, new = round((weight.shape[1] / channels) ** 0.5), round((target.shape[1] / channels) ** 0.5)
        maps = weight.reshape(weight.shape[0], channels, old, old)
        resized = F.interpolate(maps, size=(new, new), mode="bilinear", align_corners=False) * (old / new) ** 2
        return {**state, key: resized.reshape(target.shape)}
