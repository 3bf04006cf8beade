import torch

from keypoints.training.metrics import LandmarkMetrics


def face(iod: float) -> torch.Tensor:
    pts = torch.rand(68, 2) * 100
    pts[36] = torch.tensor([10.0, 50.0])
    pts[45] = torch.tensor([10.0 + iod, 50.0])
    return pts


def test_nme_failure_rate_and_rmse_from_known_errors():
    targets = torch.stack([face(40.0), face(50.0)])
    shift = torch.tensor([[3.0, 4.0], [0.0, 6.0]])  # 5 px and 6 px at every point
    metric = LandmarkMetrics()
    metric.update(targets + shift[:, None], targets)
    out = metric.compute()
    torch.testing.assert_close(out["nme"].item(), (5 / 40 + 6 / 50) / 2)
    assert out["fr10"].item() == 1.0  # 0.125 and 0.12 both exceed 0.10
    torch.testing.assert_close(out["rmse_px"].item(), ((9 + 16 + 0 + 36) / 4) ** 0.5)
    assert out["n"].item() == 2


def test_states_accumulate_over_batches_like_one_batch():
    targets, noise = torch.stack([face(40.0 + i) for i in range(6)]), torch.randn(6, 68, 2) * 3
    whole, parts = LandmarkMetrics(), LandmarkMetrics()
    whole.update(targets + noise, targets)
    parts.update(targets[:2] + noise[:2], targets[:2])
    parts.update(targets[2:] + noise[2:], targets[2:])
    for key, value in whole.compute().items():
        torch.testing.assert_close(parts.compute()[key], value)


def test_a_nan_prediction_is_a_failure_not_a_pass():
    targets = torch.stack([face(40.0), face(50.0)])
    pred = targets.clone()
    pred[1, 7, 0] = float("nan")
    metric = LandmarkMetrics()
    metric.update(pred, targets)
    out = metric.compute()
    assert out["fr10"].item() == 0.5  # the exact face passes, the NaN one fails
    assert torch.isnan(out["nme"])  # and the mean cannot hide it
