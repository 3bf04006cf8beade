"""scripts/benchmark_speed.py, tiny: the per-stage budget beside dlib; every checkpoint under every backend,
the face stage alone, dlib or a note."""

import json
import shutil

from conftest import PHOTOS, run_script
from keypoints.inference.model_files import DEFAULT_INT8_MODEL


def test_benchmark_speed_writes_a_row_per_model_and_backend(tiny_checkpoint, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(PHOTOS / "obamas.jpg", photos)
    proc = run_script("benchmark_speed.py", "parts=[backends]", f"ckpt_paths=[{tiny_checkpoint},null,{DEFAULT_INT8_MODEL}]", f"photos={photos}",
                      "warmup=1", "repeats=2", "batch=4", "photo_repeats=1", f"hydra.run.dir={tmp_path / 'run'}")
    table = (tmp_path / "run" / "speed.md").read_text()
    result = json.loads((tmp_path / "run" / "speed.json").read_text())
    assert table in proc.stdout
    assert result["machine"]["cpu_count"] > 0 and result["machine"]["torch_threads"] > 0
    # a checkpoint has no int8 row (that needs calibration photos: a note says so); the shipped model's int8 copy has
    tiny = [r for r in result["rows"] if r["method"].startswith("NaimishNet")]
    shipped = [r for r in result["rows"] if r["method"] == "MobileRegressor (shipped default)"]
    assert [r["backend"] for r in tiny] == ["torch", "onnxruntime"]
    assert [r["backend"] for r in shipped] == ["torch", "onnxruntime", "onnxruntime-int8"]
    assert f"{tiny_checkpoint}: no int8 row" in table
    # an exported file runs under ONNX Runtime as it was written: one row, whatever `backends` says
    exported = [r for r in result["rows"] if r["method"] == f"MobileRegressor (keypoints/{DEFAULT_INT8_MODEL.name})"]
    assert [r["backend"] for r in exported] == ["onnxruntime"]
    for r in tiny + shipped + exported:
        assert r["latency_ms"] > 0 and r["faces_per_s"] > 0 and r["photos_per_s"] > 0 and r["faces"] == 2
        assert f"| {r['backend']} | {r['input']} |" in table
    assert "| face stage alone (YuNet) |" in table and "keypoints, batch 4 (faces/s)" in table
    # dlib when the peers extra is installed, else a note saying so
    assert "| dlib HOG + 68-point shape predictor |" in table or "Note: dlib skipped" in table


def test_benchmark_speed_budget_names_every_stage_the_whole_and_dlibs_ratio(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("obamas.jpg", "mona_lisa.jpg"):
        shutil.copy(PHOTOS / name, photos)
    sets = [f"budget.sets.{name}={photos}" for name in ("test_split", "photos", "aflw_labelled")]
    proc = run_script("benchmark_speed.py", "parts=[budget]", *sets, "budget.limit=1", "budget.repeats=1",
                      f"hydra.run.dir={tmp_path / 'run'}")
    table = (tmp_path / "run" / "budget.md").read_text()
    result = json.loads((tmp_path / "run" / "budget.json").read_text())
    assert table in proc.stdout and not (tmp_path / "run" / "speed.md").exists()
    assert result["setup"]["backend"] == "auto" and result["setup"]["refine_min_move"] == 0.05
    for name, r in result["sets"].items():
        assert r["photos"] == 1 and r["faces"] == 1  # the first photo by name: mona_lisa.jpg
        assert sum(r["stages_ms"].values()) <= r["whole_ms"]
    for row in ("| face stage |", "| network, pass 1 |", "| pose |", "| **whole pipeline** |", "| **ratio to dlib** |"):
        assert row in table
    assert "(1 photos)" in table and result["machine"]["cpu_flags"] != ""


def test_benchmark_speed_budget_without_its_peers_says_so_not_nan(tmp_path):
    proc = run_script("benchmark_speed.py", "parts=[budget]", "peers=false", "budget.mediapipe=null", "budget.limit=1",
                      "budget.repeats=1", *[f"budget.sets.{name}={PHOTOS}" for name in ("test_split", "photos", "aflw_labelled")],
                      f"hydra.run.dir={tmp_path / 'run'}")
    table = (tmp_path / "run" / "budget.md").read_text()
    assert "nan" not in table.lower() and "nan" not in proc.stdout.lower()
    assert "| **ratio to dlib** | **—** |" in table and "| **ratio to MediaPipe** | **—** |" in table
    assert "| faces found (ours / dlib / MediaPipe) | 1 / — / — | 1 / — / — | 1 / — / — |" in table  # mona_lisa.jpg, first by name


def test_benchmark_speed_refuses_an_unknown_part(tmp_path):
    proc = run_script("benchmark_speed.py", "parts=[budgt]", f"hydra.run.dir={tmp_path / 'run'}", check=False)
    assert proc.returncode == 2 and "parts=['budgt']: unknown part 'budgt'" in proc.stderr
