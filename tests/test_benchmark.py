"""scripts/benchmark.py end to end on tiny data, and the scoring rules behind its table."""

import json

import numpy as np
import pytest

from conftest import run_script
from keypoints.benchmarks import accuracy as benchmark
from keypoints.core.errors import KeypointsError


def test_a_miss_counts_as_a_failure_and_perfect_points_score_zero():
    truth = np.stack([np.linspace(10, 90, 68), np.linspace(20, 80, 68)], 1).astype(np.float32)
    box = (0, 0, 100, 100)
    assert benchmark.match([((200, 200, 50, 50), truth)], truth) is None  # box elsewhere: a miss
    np.testing.assert_array_equal(benchmark.match([(box, truth)], truth), truth)
    assert benchmark.nme(truth, truth) == 0.0
    summary = benchmark.summarise(np.array([0.0, 0.05, np.inf, 0.2]), np.array([0.0, 0.01, np.inf, 0.03]))
    assert summary["found"] == 0.75 and summary["fr10"] == 0.5  # the miss and the 0.2 fail
    assert summary["nme"] == pytest.approx((0.0 + 0.05 + 0.2) / 3)
    assert benchmark.summarise(np.zeros(5), np.zeros(5))["auc10"] == pytest.approx(1.0)
    assert 0.0 < summary["auc10"] < 0.5
    # the box measure: mean and median over found faces, and the miss is its only failure
    assert summary["box_mean"] == pytest.approx(0.04 / 3) and summary["box_median"] == pytest.approx(0.01)
    assert summary["box_fr10"] == 0.25


def test_each_method_is_compared_with_the_first_face_by_face_on_the_faces_both_found():
    inf = np.inf
    results = {"default": {"errors": np.array([0.02, 0.03, inf, 0.05]), "box_errors": np.array([0.01, 0.02, inf, 0.03])},
               "mine": {"errors": np.array([0.03, 0.03, 0.04, inf]), "box_errors": np.array([0.01, 0.04, 0.02, inf])}}
    paired = benchmark.against_first(results)
    assert list(paired) == ["mine"] and paired["mine"]["reference"] == "default" and paired["mine"]["faces"] == 2
    assert paired["mine"]["nme"] == pytest.approx(0.005) and paired["mine"]["nme_se"] == pytest.approx(0.005)
    assert paired["mine"]["box"] == pytest.approx(0.01) and paired["mine"]["box_se"] == pytest.approx(0.01)
    assert benchmark.paired_table(paired, "dev") == [["dev", "mine", "default", "2", "+0.50 ± 0.50", "+1.00 ± 1.00"]]
    assert benchmark.against_first({"default": results["default"]}) == {} == benchmark.against_first({})


def test_box_error_is_over_the_inner_51_points_by_the_labelled_box():
    rng = np.random.default_rng(0)
    truth = rng.uniform(0, 1, (68, 2)) * [80, 45] + 10  # a box of about 80 x 45 px
    w, h = truth.max(axis=0) - truth.min(axis=0)
    moved = truth + [3.0, 4.0]  # 5 px at every point
    moved[:17] += 100  # the jaw does not count
    assert benchmark.box_error(moved, truth) == pytest.approx(5 / np.sqrt(w * h))
    assert benchmark.box_error(truth, truth) == 0.0


def test_mean_offset_is_the_signed_shift_of_found_faces():
    truth = np.stack([np.linspace(10, 90, 68), np.linspace(20, 80, 68)], 1).astype(np.float32)
    images = [np.zeros((100, 100, 3), np.uint8)] * 3
    answers = iter([None, [((0, 0, 100, 100), truth + [1.0, -2.0])], [], [((0, 0, 100, 100), truth + [3.0, 0.0])]])
    result = benchmark.run_method(lambda image: next(answers) or [], images, np.stack([truth] * 3))  # 1st: warm-up
    assert np.isinf(result["errors"][1]) and np.isfinite(result["errors"][[0, 2]]).all()
    np.testing.assert_allclose(result["offset_px"], [2.0, -1.0])  # the miss does not count


def test_benchmark_script_writes_table_json_and_curve(tiny_root, tiny_checkpoint, tiny_face_checkpoint, tmp_path):
    out = tmp_path / "bench"
    proc = run_script("benchmark.py", f"paths.data_dir={tiny_root}", "default_model=false", "peers=false",
                      f"ckpt_paths=[{tiny_checkpoint},{tiny_face_checkpoint.parent.parent}]", f"output={out}",  # a run folder: its best
                      f"hydra.run.dir={tmp_path / 'run'}")
    rows = json.loads((out / "benchmark.json").read_text())
    assert len(rows) == 2 and all(r["n"] == 8 and 0.0 <= r["found"] <= 1.0 for r in rows.values())
    assert all(len(r["offset_px"]) == 2 for r in rows.values())
    assert all(set(r["groups_on_common_faces"]) == {"jaw", "brows", "nose", "eyes", "mouth"} for r in rows.values())
    table = (out / "benchmark.md").read_text()
    second = list(rows.values())[1]["against_first"]
    assert second["reference"] == list(rows)[0] and second["faces"] <= 8 and "against_first" not in list(rows.values())[0]
    assert table.count("\n") == 13 and "| faces both found |" in table and "| faces found |" in table and "| jaw | brows | nose | eyes | mouth |" in table and "| mean offset x, y (px) |" in table and table in proc.stdout + "\n"
    assert (out / "ced.png").stat().st_size > 1000


def test_benchmark_runs_on_any_labelled_folder(tmp_path):
    """labels= and images= point the same table at another labelled set: here 3 wild photos, the
    shipped int8 model behind both face stages (each row names its backend)."""
    from conftest import SHARED

    wild = SHARED / "data" / "wild" / "aflw"
    out = tmp_path / "bench"
    run_script("benchmark.py", f"labels={wild / 'labelled_keypoints.csv'}", f"images={wild / 'labelled'}", "limit=3",
               "backend=onnxruntime-int8", "also_faces=[haar]", "peers=false", f"output={out}",
               f"hydra.run.dir={tmp_path / 'run'}")
    rows = json.loads((out / "benchmark.json").read_text())
    assert sorted(rows) == ["MobileRegressor (shipped default, onnxruntime-int8), HaarCascade",
                            "MobileRegressor (shipped default, onnxruntime-int8), YuNet"]
    yunet = rows["MobileRegressor (shipped default, onnxruntime-int8), YuNet"]
    assert yunet["n"] == 3 and yunet["found"] == 1.0 and yunet["box_mean"] > 0


def test_skip_and_limit_choose_the_rows(tmp_path):
    from conftest import SHARED

    wild = SHARED / "data" / "wild" / "aflw"
    _, first = benchmark.load_labelled(wild / "labelled_keypoints.csv", wild / "labelled", limit=3)
    images, rows = benchmark.load_labelled(wild / "labelled_keypoints.csv", wild / "labelled", limit=2, skip=1)
    assert len(images) == 2 and np.array_equal(rows, first[1:3])
    with pytest.raises(KeypointsError, match="no rows left after skip=100"):
        benchmark.load_labelled(wild / "labelled_keypoints.csv", wild / "labelled", skip=100)


def test_benchmark_without_data_is_one_line(tmp_path):
    proc = run_script("benchmark.py", f"paths.data_dir={tmp_path / 'nope'}", "peers=false",
                      f"hydra.run.dir={tmp_path / 'run'}", check=False)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "nope" in proc.stderr


def test_point_groups_are_scored_on_the_faces_every_method_found():
    """A method that misses a hard face must not look better for it: the group table compares every
    method on the faces all of them found, each group by the face's eye-corner distance."""
    truth = np.stack([np.linspace(10, 90, 68), np.linspace(20, 80, 68)], 1).astype(np.float32)
    images, truths = [np.zeros((100, 100, 3), np.uint8)] * 2, np.stack([truth] * 2)
    box = (0, 0, 100, 100)
    wrong_mouth = truth.copy()
    wrong_mouth[48:68] += [30.0, 40.0]  # 50 px off on the mouth alone
    brows_off = truth.copy()
    brows_off[17:27] += [3.0, 4.0]
    a = iter([[(box, truth)], [(box, brows_off)], [(box, wrong_mouth)]])  # first call: warm-up
    b = iter([[(box, truth)], [(box, truth)], []])  # misses the second face
    results = {"a": benchmark.run_method(lambda image: next(a), images, truths),
               "b": benchmark.run_method(lambda image: next(b), images, truths)}
    text, rows = benchmark.group_table(results)
    eyes = np.linalg.norm(truth[36] - truth[45])
    assert rows["faces"] == 1 and "on the 1 faces every method found" in text
    assert rows["methods"]["a"]["brows"] == pytest.approx(5 / eyes) and rows["methods"]["a"]["mouth"] == 0.0
    assert all(v == 0.0 for v in rows["methods"]["b"].values())


def test_several_sets_in_one_run_each_with_its_table_and_one_summary(tmp_path):
    """sets= scores 300-W's dev set (the markup the JSON promises) beside the wild held-out half in one
    run: a folder and table each, and summary.md with each point group's NME and each method against
    the first, face by face (here the shipped model behind Haar against it behind YuNet)."""
    out = tmp_path / "bench"
    proc = run_script("benchmark.py", "sets=[w300_dev,wild_held_out]", "limit=2", "peers=false", "also_faces=[haar]", f"output={out}",
                      f"hydra.run.dir={tmp_path / 'run'}")
    for name in ("w300_dev", "wild_held_out"):
        rows = json.loads((out / name / "benchmark.json").read_text())
        assert [r["n"] for r in rows.values()] == [2, 2]
    summary = (out / "summary.md").read_text()
    assert "| set | method |" in summary and "| jaw | brows | nose | eyes | mouth |" in summary
    assert summary.count("| w300_dev |") == 3 and summary.count("| wild_held_out |") == 3 and "summary.md" in proc.stdout
    assert "| faces both found |" in summary and summary.count(" ± ") == 4  # a row a set, two measures a row
    bad = run_script("benchmark.py", "sets=[w300_test]", "peers=false", f"hydra.run.dir={tmp_path / 'run2'}", check=False)
    assert bad.returncode == 2 and bad.stderr.startswith("error: sets: unknown ['w300_test']")


def test_two_models_with_one_file_name_keep_a_row_each():
    """Two runs' model.onnx are named by their paths (a row named only model.onnx replaced the other's)."""
    from keypoints.commands.benchmark import method_sources

    assert method_sources([None, "a/model.onnx", "b/model.onnx", "c/other.onnx"]) == \
        ["shipped default", "a/model.onnx", "b/model.onnx", "other.onnx"]
    with pytest.raises(KeypointsError, match=r"^ckpt_paths: a/model.onnx is given twice$"):
        method_sources([None, "a/model.onnx", "a/model.onnx"])


def test_pose_and_3d_points_are_scored_against_aflw2000s_labels_on_the_faces_found(tmp_path):
    """A method whose faces are fitted to the labels' own points scores a few degrees and a few percent; one
    that misses a face or gives no pose leaves it out (NaN), and the table names both, published rows beside."""
    from conftest import SHARED
    from keypoints.benchmarks import head
    from keypoints.inference.detector import Face

    wild = SHARED / "data" / "wild" / "aflw"
    images, truths = benchmark.load_labelled(wild / "labelled_keypoints.csv", wild / "labelled", limit=4, skip=10)
    heads = head.load_heads(wild / "labelled_keypoints.csv", wild / "labelled_pose.csv", wild / "labelled_3d.csv", limit=4, skip=10)
    assert heads["pose"].shape == (4, 3) and heads["points_3d"].shape == (4, 68, 3)
    faces = iter([None] + [[((0, 0, 384, 384), t, Face.fitted([(0, 0, 384, 384)], [1.0], [t])[0])] for t in truths])  # 1st: warm-up
    fitted = benchmark.run_method(lambda image: next(faces), images, truths, heads)
    assert fitted["pose_errors"].shape == (4, 3) and np.nanmean(fitted["pose_errors"]) < 5
    assert 0 < np.mean(fitted["points_3d_errors"]) < 0.04
    plain = iter([None, [], *[[((0, 0, 384, 384), t)] for t in truths[1:]]])  # a miss, then faces with no pose
    unposed = benchmark.run_method(lambda image: next(plain), images, truths, heads)
    assert np.isnan(unposed["pose_errors"]).all() and np.isnan(unposed["points_3d_errors"]).all()
    text = benchmark.write_report({"fitted": fitted, "unposed": unposed}, tmp_path)
    assert "| fitted | 4 of 4 |" in text and "| unposed | 0 of 4 |" in text and "SynergyNet (published" in text
    assert json.loads((tmp_path / "benchmark.json").read_text())["fitted"]["head"]["faces"] == 4


def test_a_pose_csv_without_a_labelled_photo_is_one_line_naming_it(tmp_path):
    from conftest import SHARED
    from keypoints.benchmarks import head

    wild = SHARED / "data" / "wild" / "aflw"
    first = (wild / "labelled_keypoints.csv").read_text().splitlines()[1].split(",")[0]
    lines = (wild / "labelled_pose.csv").read_text().splitlines()
    (tmp_path / "pose.csv").write_text("\n".join(line for line in lines if not line.startswith(first + ",")) + "\n")
    with pytest.raises(KeypointsError, match=rf"pose\.csv: no row of 3 numbers for {first}"):
        head.load_heads(wild / "labelled_keypoints.csv", tmp_path / "pose.csv", wild / "labelled_3d.csv", limit=2)
    (tmp_path / "pose.csv").write_text(f"{lines[0]}\n{first},a,b,c,1\n")
    with pytest.raises(KeypointsError, match=r"pose\.csv:2: not a file name followed by numbers"):
        head.load_heads(wild / "labelled_keypoints.csv", tmp_path / "pose.csv", wild / "labelled_3d.csv", limit=2)
