import numpy as np
import pytest
import torch

from keypoints.training.losses import WingLoss
from keypoints.core.errors import KeypointsError
from keypoints.training.models import AlexNet, MobileRegressor, NaimishNet, ResNetRegressor


def n_params(net):
    return sum(p.numel() for p in net.parameters())


# Counted by hand from the layer list (weights + biases + batch-norm scale/shift):
# AlexNet: conv 1632 + 614656 + 885120 + 1327488 + 884992, BN 512 + 768 + 768 + 512,
#          fc 37752832 + 16781312 + 557192, BN 8192 + 8192                       = 58,824,168
# Naimish: conv 544 + 18496 + 32896 + 33024, fc 6401000 + 1001000 + 136136       =  7,623,096
# ResNet:  stem 352, stage 64: 57728, stage 128: 525568, stage 256: 2099712, 1x1 head 16512,
#          linear 3136 x 136 + 136 = 426632                                      =  3,126,504
# Mobile:  stem 176, stage 32: 3968 + 9920, stage 64: 14080 + 2 x 36224, stage 128: 52736 + 2 x 137984,
#          1x1 head 8320, linear 2304 x 136 + 136 = 313480                       =    751,096
@pytest.mark.parametrize("net_cls, size, params", [
    (AlexNet, 227, 58_824_168), (NaimishNet, 96, 7_623_096), (ResNetRegressor, 112, 3_126_504), (MobileRegressor, 96, 751_096),
])  # fmt: skip
def test_output_shape_and_parameter_count(net_cls, size, params):
    net = net_cls().eval()
    out = net(torch.rand(2, 1, size, size))
    assert out.shape == (2, 68, 2)
    assert n_params(net) == params


def test_dropout_scalar_sets_every_stage_and_list_sets_each():
    rates = lambda net: [m.p for m in net.modules() if isinstance(m, torch.nn.Dropout)]  # noqa: E731
    assert rates(AlexNet()) == [0.2, 0.4, 0.4, 0.4, 0.6, 0.6]
    assert set(rates(AlexNet(dropout=0.5))) == {0.5}
    assert rates(NaimishNet()) == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    with pytest.raises(ValueError, match="model.dropout"):
        NaimishNet(dropout=[0.1, 0.2])


def test_batchnorm_recalibration_measures_statistics_with_dropout_off():
    from keypoints.training.models import batchnorm

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.6), torch.nn.BatchNorm1d(8))
    batches = [torch.randn(256, 4) for _ in range(4)]
    net.train()
    with torch.no_grad():
        for x in batches:
            net(x)  # running statistics of dropout-noised activations
        clean = torch.cat([net[0](x) for x in batches])
    assert not torch.allclose(net[2].running_var, clean.var(0), rtol=0.05)
    batchnorm.recalibrate(net, batches)
    # momentum=None averages per-batch statistics: equal to the pooled ones up to batch-to-batch spread
    torch.testing.assert_close(net[2].running_mean, clean.mean(0), rtol=0, atol=1e-5)
    torch.testing.assert_close(net[2].running_var, torch.stack([net[0](x).var(0) for x in batches]).mean(0).detach(), rtol=1e-4, atol=1e-5)
    assert net.training and net[2].momentum == 0.1  # restored


def test_resnet_keypoints_stay_float32_under_bf16_autocast():
    net = ResNetRegressor().eval()
    x = torch.rand(2, 1, 112, 112)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(x)
    assert out.dtype == torch.float32
    # the body ran in bf16, yet the output is not rounded to bf16's 8-bit mantissa
    net.head[-1].bias.data.fill_(1.2345678)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(x)
    assert torch.allclose(out, torch.full_like(out, 1.2345678), atol=1e-6)


def test_wing_loss_is_logarithmic_inside_the_width_and_l1_outside():
    loss = WingLoss(width=0.36, curvature=0.07)
    zero = torch.zeros(1, 68, 2)

    def at(error: float) -> float:
        return loss(torch.full((1, 68, 2), error), zero).item()

    assert at(0.0) == 0.0
    assert at(0.36 - 1e-6) == pytest.approx(at(0.36 + 1e-6), abs=1e-5)  # continuous at the width
    assert at(1.0) - at(0.9) == pytest.approx(0.1, abs=1e-5)  # slope 1 outside (L1)
    small = (at(0.02) - at(0.01)) / 0.01
    assert small > 3.0  # steep near zero: 0.36 / (0.07 + 0.015) ~ 4.2, where L2's slope is ~0.03


def test_a_resnet_starts_from_another_input_sizes_weights():
    torch.manual_seed(0)
    small, large = ResNetRegressor(input_size=112).eval(), ResNetRegressor(input_size=160).eval()
    with pytest.raises(RuntimeError):
        large.load_state_dict(small.state_dict())  # the head reads a 7x7 map, the larger net a 10x10 one
    large.load_state_dict(large.resized_state(small.state_dict()))
    # a constant image gives constant feature maps: the resampled head reads the same sum from them
    flat = torch.full((1, 1, 112, 112), 0.5)
    with torch.no_grad():
        a, b = small(flat), large(torch.full((1, 1, 160, 160), 0.5))
    assert torch.allclose(a, b, atol=0.05 * a.abs().max().item())


def test_a_shallower_resnet_starts_from_a_deeper_ones_first_blocks():
    torch.manual_seed(0)
    deep, shallow = ResNetRegressor(input_size=96), ResNetRegressor(input_size=96, blocks=(0, 1, 1, 1))
    with pytest.raises(RuntimeError):
        shallow.load_state_dict(deep.state_dict())
    shallow.load_state_dict(shallow.resized_state(deep.state_dict()))
    # deep: stem, block 64, blocks 128 x 2, blocks 256 x 2, 1x1 conv; shallow: the first of each
    for mine, theirs in [(0, 0), (2, 2), (3, 3), (4, 5), (5, 7)]:
        for a, b in zip(shallow.features[mine].parameters(), deep.features[theirs].parameters()):
            torch.testing.assert_close(a, b)
    torch.testing.assert_close(shallow.head[2].weight, deep.head[2].weight)
    # a deeper network than its source has blocks nobody trained: not a start, the load says so
    with pytest.raises(RuntimeError):
        deep.load_state_dict(deep.resized_state(shallow.state_dict()))


def test_heatmap_head_reads_each_point_where_its_heatmap_peaks():
    """A peaked heatmap at cell (row 3, column 20) of the 28x28 grid reads as that cell's centre in
    input pixels (4 * 20 + 1.5, 4 * 3 + 1.5), in the regression head's normalised coordinates."""
    from keypoints.core import geometry
    from keypoints.training.models.resnet import soft_argmax

    net = ResNetRegressor(head="heatmap").eval()
    heat = torch.full((1, 68, 28, 28), -50.0)
    heat[0, :, 3, 20] = 50.0
    got = soft_argmax(heat, net.heatmap.grid)[0].numpy()
    np.testing.assert_allclose(geometry.denormalize(got, 112), np.tile([81.5, 13.5], (68, 1)), atol=1e-4)
    out = net(torch.rand(2, 1, 112, 112))
    assert out.shape == (2, 68, 2) and out.dtype == torch.float32
    out.sum().backward()  # the decoder and the backbone both learn


def test_heatmap_head_starts_from_a_regressor_backbone():
    regressor, heatmap = ResNetRegressor(), ResNetRegressor(head="heatmap")
    heatmap.load_state_dict(heatmap.resized_state(regressor.state_dict()))
    torch.testing.assert_close(heatmap.features[0][0].weight, regressor.features[0][0].weight)
    with pytest.raises(KeypointsError, match="model.net.head"):
        ResNetRegressor(head="simcc")
