import json

from conftest import compose_config, tiny_overrides
from keypoints.benchmarks.throughput import benchmark_train


def test_benchmark_train_measures_both_loops(tiny_root, tmp_path, capsys):
    result = benchmark_train(compose_config("benchmark_train", "model=naimish", "logger=none", "warmup=1", "steps=2",
                                            *tiny_overrides(tiny_root, tmp_path), run_dir=tmp_path))
    assert result["framework_img_s"] > 0 and result["bare_img_s"] > 0 and result["batch_size"] == 4
    written = json.loads((tmp_path / "throughput.json").read_text())
    # shown to one decimal (img/s) and three (the share), the share from the unrounded speeds
    assert written["framework_img_s"] == round(result["framework_img_s"], 1)
    assert written["framework_share"] == round(result["framework_img_s"] / result["bare_img_s"], 3)
    assert json.loads(capsys.readouterr().out) == written
