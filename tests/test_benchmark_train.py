import json

from conftest import run_script, tiny_overrides


def test_benchmark_train_measures_both_loops(tiny_root, tmp_path):
    proc = run_script("benchmark_train.py", "model=naimish", "logger=none", "warmup=1", "steps=2",
                      *tiny_overrides(tiny_root, tmp_path))
    result = json.loads((tmp_path / "throughput.json").read_text())
    assert result["framework_img_s"] > 0 and result["bare_img_s"] > 0 and result["batch_size"] == 4
    assert abs(result["framework_share"] - result["framework_img_s"] / result["bare_img_s"]) < 0.02  # rounding
    assert '"framework_img_s"' in proc.stdout
