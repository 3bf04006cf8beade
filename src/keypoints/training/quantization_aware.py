"""Quantization-aware training: the int8 file's rounding of activations, simulated while the network trains.

An int8 export (keypoints.training.quantize) stores every activation ONNX Runtime quantizes in 8 bits: each
convolution's output after its activation (or after its batch norm where none follows) and each
residual sum. A network trained in float never saw that rounding; the narrow MobileNet-class student
loses 0.15 point of 300w dev NME to it (docs/RESULTS.md). This callback rounds those same tensors
during training with PyTorch's own fake quantization (torch.ao.quantization.FakeQuantize: uint8,
per tensor, ranges from a moving average of each batch's min and max), so the weights learn to live
with it. It adds nothing to the network or its checkpoint: forward hooks, removed when fit ends, and
the export quantizes the trained float network as it quantizes any other.

    python scripts/train.py experiment=face_300w_mobile_qat init_from=<float run> teacher=<run> ...
    python scripts/train.py ... "callbacks.quantization_aware={_target_:keypoints.training.quantization_aware.QuantizationAware}"

With `weights=True` the convolutions' weights are rounded too, as the export stores them: per output
channel, symmetric, 7 bits (-64..64, `reduce_range`), the stem left float as the export leaves it. The
export folds batch norm into the weights first, which scales each output channel by one number; per-channel
symmetric rounding is the same grid scaled by it, so rounding the unfolded weights is the export's rounding.
Off by default: on the narrow student it did not help (300w dev 4.28–4.35% in int8 against 4.25% without it,
docs/RESULTS.md "The narrow student ships").
"""

import lightning as L
import torch
from torch import nn
from torch.ao.quantization import FakeQuantize, MovingAverageMinMaxObserver

from keypoints.core.errors import KeypointsError


def quantized_outputs(net: nn.Module) -> list[nn.Module]:
    """The modules whose outputs an int8 export stores in 8 bits: activations (ReLU, ReLU6), a
    convolution + batch-norm block with no activation after it, and blocks that add a residual."""
    points = []
    for module in net.modules():
        children = list(module.children())
        if isinstance(module, (nn.ReLU, nn.ReLU6)):
            points.append(module)
        elif isinstance(module, nn.Sequential) and len(children) == 2 and isinstance(children[0], nn.Conv2d) \
                and isinstance(children[1], nn.BatchNorm2d):
            points.append(module)
        elif getattr(module, "residual", False) is True:
            points.append(module)
    return points


class QuantizationAware(L.Callback):
    """Fake-quantize `quantized_outputs(pl_module.net)` during fit."""

    def __init__(self, weights: bool = False):
        self.weights = weights
        self.quantizers: list[FakeQuantize] = []
        self.handles = []
        self.rounded_convs: list[nn.Conv2d] = []

    def on_fit_start(self, trainer, pl_module) -> None:
        points = quantized_outputs(pl_module.net)
        if not points:
            raise KeypointsError(f"callbacks.quantization_aware: {type(pl_module.net).__name__} has no activation, "
                                 "conv + batch-norm block or residual block to quantize")
        for module in points:
            quantizer = FakeQuantize(observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255,
                                     dtype=torch.quint8, qscheme=torch.per_tensor_affine)
            self.quantizers.append(quantizer)
            self.handles.append(module.register_forward_hook(self._hook(quantizer)))
        if self.weights:
            convs = [m for m in pl_module.net.modules() if isinstance(m, nn.Conv2d)]
            for conv in convs[1:]:  # keypoints.training.quantize keeps the first convolution float
                conv.forward = self._rounded_forward(conv)  # an instance attribute: not in the state dict
                self.rounded_convs.append(conv)

    @staticmethod
    def _hook(quantizer: FakeQuantize):
        def round_output(module, inputs, output: torch.Tensor) -> torch.Tensor:
            if quantizer.scale.device != output.device:
                quantizer.to(output.device)
            quantizer.enable_observer(module.training)  # ranges follow the training batches; validation uses them as they stand
            if not module.training and torch.isinf(quantizer.activation_post_process.min_val).any():
                return output  # no range yet (Lightning's sanity check validates before any training batch)
            return quantizer(output.float()).to(output.dtype)
        return round_output

    @staticmethod
    def _rounded_forward(conv: nn.Conv2d):
        def forward(x: torch.Tensor) -> torch.Tensor:
            w = conv.weight
            scale = (w.detach().abs().amax(dim=(1, 2, 3)).float() / 64).clamp_min(1e-12)
            zero = torch.zeros(w.shape[0], dtype=torch.int32, device=w.device)
            rounded = torch.fake_quantize_per_channel_affine(w.float(), scale, zero, 0, -64, 64).to(w.dtype)
            return conv._conv_forward(x, rounded, conv.bias)
        return forward

    def on_fit_end(self, trainer, pl_module) -> None:
        for handle in self.handles:
            handle.remove()
        for conv in self.rounded_convs:
            del conv.forward  # back to the class's forward
        self.handles, self.quantizers, self.rounded_convs = [], [], []
