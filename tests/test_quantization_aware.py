"""Quantization-aware training (callbacks.quantization_aware): the int8 export's rounding in the training loop."""

import copy
import json

import pytest
import torch

from conftest import run_script, tiny_overrides
from keypoints.core.errors import KeypointsError
from keypoints.training.models import MobileRegressor, ResNetRegressor
from keypoints.training.module import load_checkpoint
from keypoints.training.quantization_aware import QuantizationAware, quantized_outputs

CALLBACK = "callbacks.quantization_aware={_target_:keypoints.training.quantization_aware.QuantizationAware}"


class Holder:  # what the callback reads of a LightningModule: its network
    def __init__(self, net):
        self.net = net


def test_the_rounded_tensors_are_those_an_int8_export_stores():
    blocks = (2, 3, 3)
    net = MobileRegressor(widths=(8, 16, 32), blocks=blocks, head_channels=8)
    points = quantized_outputs(net)
    kinds = [type(m).__name__ for m in points]
    # ReLU6 after the stem, each block's widening and depthwise convolutions and the head's; each
    # block's narrowing (conv + batch norm, no activation); the sum of each block that keeps its shape
    assert kinds.count("ReLU6") == 1 + 2 * sum(blocks) + 1
    assert kinds.count("Sequential") == sum(blocks)
    assert kinds.count("InvertedResidual") == sum(blocks) - len(blocks)


def test_the_resnets_residual_sums_are_rounded_too():
    net = ResNetRegressor(input_size=96)
    kinds = [type(m).__name__ for m in quantized_outputs(net)]
    blocks = [m for m in net.modules() if type(m).__name__ == "BasicBlock"]
    assert blocks and kinds.count("BasicBlock") == len(blocks)  # relu(body + shortcut): the block's output


def test_training_sees_8_bit_activations_and_the_network_is_left_as_it_was():
    torch.manual_seed(0)
    net = MobileRegressor(widths=(8, 16, 32), blocks=(1, 2, 1), head_channels=8)
    plain = copy.deepcopy(net).eval()
    callback = QuantizationAware()
    callback.on_fit_start(None, Holder(net))
    x = torch.rand(2, 1, 96, 96)
    assert torch.equal(net.eval()(x), plain(x))  # no range before the first training batch: nothing rounded
    seen = []
    for module in quantized_outputs(net):  # registered after the callback's hooks: sees what they return
        module.register_forward_hook(lambda m, i, out: seen.append(out.detach().clone()))
    net.train()
    net(torch.rand(4, 1, 96, 96))
    assert len(seen) == len(callback.quantizers)
    for out in seen:
        assert out.unique().numel() <= 256  # one byte's levels per tensor
    assert any(out.unique().numel() > 16 for out in seen)  # rounded, not collapsed
    scales = [q.scale.clone() for q in callback.quantizers]
    net.eval()
    net(torch.rand(4, 1, 96, 96) * 5)  # validation rounds with the ranges as they stand, and does not move them
    assert all(torch.equal(q.scale, s) for q, s in zip(callback.quantizers, scales))

    callback.on_fit_end(None, Holder(net))
    net.load_state_dict(plain.state_dict())  # undo the training step's batch-norm statistics
    assert torch.equal(net(x), plain(x))  # no hook left


def test_weights_are_rounded_as_the_export_stores_them_and_left_float_after():
    torch.manual_seed(0)
    net = MobileRegressor(widths=(8, 16, 32), blocks=(1, 2, 1), head_channels=8)
    torch.nn.init.normal_(net.head[-1].weight, std=0.01)  # start_at_centre zeroes it: no gradient would reach the convolutions
    plain = copy.deepcopy(net)
    callback = QuantizationAware(weights=True)
    callback.on_fit_start(None, Holder(net))
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert callback.rounded_convs == convs[1:]  # the stem stays float, as keypoints.training.quantize leaves it
    seen = {}
    for conv in convs:
        conv.register_forward_hook(lambda m, i, out: seen.__setitem__(m, (i[0].detach(), out.detach())))
    net.train()
    net(torch.rand(4, 1, 96, 96)).sum().backward()
    for conv in convs:
        x, out = seen[conv]
        w = conv.weight.detach()
        scale = w.abs().amax(dim=(1, 2, 3), keepdim=True) / 64  # 7 bits a side, per output channel
        expected = w if conv is convs[0] else (w / scale).round() * scale
        assert torch.allclose(out, conv._conv_forward(x, expected, conv.bias), atol=1e-5)
        if conv is not convs[0]:
            assert not torch.allclose(out, conv._conv_forward(x, w, conv.bias), atol=1e-6)  # not the float weights'
        assert conv.weight.grad.abs().sum() > 0  # the rounding passes gradients straight through
    callback.on_fit_end(None, Holder(net))
    assert all("forward" not in vars(conv) for conv in convs)
    assert net.state_dict().keys() == plain.state_dict().keys()


def test_a_network_with_nothing_to_round_is_one_line():
    with pytest.raises(KeypointsError, match=r"^callbacks.quantization_aware: Linear has no activation"):
        QuantizationAware().on_fit_start(None, Holder(torch.nn.Linear(2, 2)))


def test_a_quantization_aware_run_saves_a_plain_network(tiny_root, tmp_path):
    """A real (tiny) Lightning run with the callback: its checkpoint is the float network with the
    same keys as a run without it, and loads as one."""
    run_script("train.py", "experiment=face_resnet", "model=mobile", "logger=none", "trainer.max_epochs=1", "test=false",
               CALLBACK, *tiny_overrides(tiny_root, tmp_path))
    assert json.loads((tmp_path / "metrics.json").read_text())["epochs"] == 1
    module = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert module.net.state_dict().keys() == MobileRegressor(head_channels=64).state_dict().keys()  # conf/model/mobile.yaml
