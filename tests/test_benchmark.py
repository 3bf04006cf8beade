"""scripts/benchmark.py end to end on tiny data, and the scoring rules behind its table."""

import json

import numpy as np
import pytest

from conftest import run_script
from keypoints import benchmark


def test_a_miss_counts_as_a_failure_and_perfect_points_score_zero():
    truth = np.stack([np.linspace(10, 90, 68), np.linspace(20, 80, 68)], 1).astype(np.float32)
    box = (0, 0, 100, 100)
    assert benchmark.match([((200, 200, 50, 50), truth)], truth) is None  # box elsewhere: a miss
    np.testing.assert_array_equal(benchmark.match([(box, truth)], truth), truth)
    assert benchmark.nme(truth, truth) == 0.0
    summary = benchmark.summarise(np.array([0.0, 0.05, np.inf, 0.2]))
    assert summary["found"] == 0.75 and summary["fr10"] == 0.5  # the miss and the 0.2 fail
    assert summary["nme"] == pytest.approx((0.0 + 0.05 + 0.2) / 3)
    assert benchmark.summarise(np.zeros(5))["auc10"] == pytest.approx(1.0)
    assert 0.0 < summary["auc10"] < 0.5


def test_mean_offset_is_the_signed_shift_of_found_faces():
    truth = np.stack([np.linspace(10, 90, 68), np.linspace(20, 80, 68)], 1).astype(np.float32)
    images = [np.zeros((100, 100, 3), np.uint8)] * 3
    answers = iter([None, [((0, 0, 100, 100), truth + [1.0, -2.0])], [], [((0, 0, 100, 100), truth + [3.0, 0.0])]])
    result = benchmark.run_method(lambda image: next(answers) or [], images, np.stack([truth] * 3))  # 1st: warm-up
    assert np.isinf(result["errors"][1]) and np.isfinite(result["errors"][[0, 2]]).all()
    np.testing.assert_allclose(result["offset_px"], [2.0, -1.0])  # the miss does not count


def test_benchmark_script_writes_table_json_and_curve(tiny_root, tiny_checkpoint, tiny_face_checkpoint, tmp_path):
    out = tmp_path / "bench"
    proc = run_script("benchmark.py", f"data_root={tiny_root}", "default_model=false", "peers=false",
                      f"ckpt_paths=[{tiny_checkpoint},{tiny_face_checkpoint}]", f"output={out}",
                      f"hydra.run.dir={tmp_path / 'run'}")
    rows = json.loads((out / "benchmark.json").read_text())
    assert len(rows) == 2 and all(r["n"] == 8 and 0.0 <= r["found"] <= 1.0 for r in rows.values())
    assert all(len(r["offset_px"]) == 2 for r in rows.values())
    table = (out / "benchmark.md").read_text()
    assert table.count("\n") == 4 and "| faces found |" in table and "| mean offset x, y (px) |" in table and table in proc.stdout + "\n"
    assert (out / "ced.png").stat().st_size > 1000


def test_benchmark_without_data_is_one_line(tmp_path):
    proc = run_script("benchmark.py", f"data_root={tmp_path / 'nope'}", "peers=false",
                      f"hydra.run.dir={tmp_path / 'run'}", check=False)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "nope" in proc.stderr
