"""Hostile but honest inputs against the real CLIs and API: one clear line, the right exit code,
and nothing lost — no input overwritten, no folder run sunk by one odd file."""

import json
import os

import cv2
import numpy as np
import pytest

import keypoints
from conftest import PHOTOS, detect_check_error, run_script
from keypoints.core.errors import KeypointsError


@pytest.fixture
def folder(tmp_path):
    """A folder of real photos (a JPEG and a PNG) and odd files: a 30000 x 30000 PNG (a few hundred
    KB: a decompression bomb), a 1 x 20000 strip, a 9000 x 3 sliver, an empty file and text."""
    src = tmp_path / "in"
    src.mkdir()
    (src / "obamas.jpg").write_bytes((PHOTOS / "obamas.jpg").read_bytes())
    cv2.imwrite(str(src / "mona.png"), cv2.imread(str(PHOTOS / "mona_lisa.jpg")))
    cv2.imwrite(str(src / "bomb.png"), np.zeros((30000, 30000), np.uint8))
    cv2.imwrite(str(src / "strip.png"), np.full((1, 20000, 3), 128, np.uint8))
    cv2.imwrite(str(src / "sliver.png"), np.full((9000, 3, 3), 128, np.uint8))
    (src / "empty.jpg").write_bytes(b"")
    (src / "notes.txt").write_text("not an image")
    return src


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_output_into_the_input_folder_is_refused_before_anything_is_written(folder, tmp_path):
    before = _snapshot(folder)
    proc = run_script("detect.py", f"input={folder}", f"output={folder}", f"hydra.run.dir={tmp_path / 'run'}", check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "output would overwrite an input" in proc.stderr
    assert _snapshot(folder) == before


def test_a_video_is_never_truncated_by_its_own_output(tmp_path):
    clip = tmp_path / "clip.mp4"
    frame = cv2.imread(str(PHOTOS / "obamas.jpg"))
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10, (frame.shape[1], frame.shape[0]))
    for _ in range(5):
        writer.write(frame)
    writer.release()
    before = clip.read_bytes()
    proc = run_script("detect.py", f"input={clip}", f"output={tmp_path}", f"hydra.run.dir={tmp_path / 'run'}", check=False)
    assert proc.returncode == 2 and f"{clip}: output would overwrite an input" in proc.stderr
    assert clip.read_bytes() == before


def test_existing_outputs_are_kept_unless_overwrite_is_asked_for(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "obamas.png").write_bytes(b"an earlier result")
    args = [f"input={PHOTOS / 'obamas.jpg'}", f"output={out}", f"hydra.run.dir={tmp_path / 'run'}"]
    proc = run_script("detect.py", *args, check=False)
    assert proc.returncode == 2 and "obamas.png: already exists" in proc.stderr
    assert (out / "obamas.png").read_bytes() == b"an earlier result"
    run_script("detect.py", *args, "overwrite=true")
    assert cv2.imread(str(out / "obamas.png")) is not None


def test_odd_files_are_reported_by_name_and_the_rest_of_the_folder_is_processed(folder, tmp_path):
    out = tmp_path / "out"
    proc = run_script("detect.py", f"input={folder}", f"output={out}", "batch_photos=2", f"hydra.run.dir={tmp_path / 'run'}",
                      check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "bomb.png: 900 megapixels, above the limit of 100" in proc.stderr
    summary = proc.stderr.strip().splitlines()[-1]
    assert summary.startswith("error: 2 of 6 files failed:") and all(n in summary for n in ("bomb.png", "empty.jpg"))
    assert "left out 1 file(s) that are not images or videos by their names (notes.txt)" in proc.stdout
    assert json.loads((out / "obamas.json").read_text())["faces"] and len(json.loads((out / "mona.json").read_text())["faces"]) == 1
    for name in ("strip", "sliver"):  # odd shapes: processed, no face
        assert json.loads((out / f"{name}.json").read_text())["faces"] == []


@pytest.mark.parametrize("override, message", [
    ("batch_photos=0", "batch_photos=0: must be a whole number >= 1"),
    ("batch_photos=-1", "batch_photos=-1: must be a whole number >= 1"),
    ("detector.refine=-1", "detector.refine=-1: must be a whole number >= 0"),
    ("detector.refine_min_move=-1", "detector.refine_min_move=-1.0: must be a number >= 0"),
    ("device=gpu0", "device='gpu0': not a device"),
    ("backend=tpu", "backend='tpu': must be one of auto, torch, onnxruntime, onnxruntime-int8"),
    ("max_megapixels=0", "max_megapixels=0: must be a number >= 0.01"),
    ("overwrite=yes", "overwrite='yes': must be true or false"),
    # values that once crashed (input=true, input=[a,b], input=, output=: tests/test_bad_sources.py)
    ("max_megapixels=inf", "max_megapixels=inf: must be a finite number"),
    ("detector.faces.keypoint_box.side=0", "detector.faces.keypoint_box.side=0.0: must be a number > 0"),
    ("detector.faces.framing.scale=-2", "detector.faces.framing.scale=-2.0: must be a number > 0"),
    # numbers far out of their range overflowed later, far from their key (issue 53)
    ("detector.faces.keypoint_box.shift_y=1e300", "detector.faces.keypoint_box.shift_y=1e+300: must be a number from -10 to 10 (box sides)"),
    ("ort_threads=99999999999", "ort_threads=99999999999: must be null or a whole number >= 1 and <= 1024"),
    ("workers=5000", "workers=5000: must be null or a whole number >= 1 and <= 1024"),
])  # fmt: skip
def test_every_settable_value_is_checked_where_the_config_is_read(override, message):
    """In-process: the composed config of detect.py through the check every entry point runs."""
    assert detect_check_error(override).startswith(message)


@pytest.mark.parametrize("override, message", [
    ("batch_photos=0", "batch_photos=0: must be a whole number >= 1"),
    # typed settings: Hydra refuses a value of the wrong type as it parses the command line
    ("detector.faces.min_score=high", "Error merging override detector.faces.min_score=high; Value 'high' of type 'str' could not be converted to Float"),
    ("detector.flip=maybe", "Error merging override detector.flip=maybe; Value 'maybe' is not a valid bool"),
    ("detector.faces.min_score=2", "detector.faces.min_score=2.0: must be a YuNet score between 0 and 1"),
    ("+detector.colour=red", "detector.colour: not a setting of detector (one of faces, refine, refine_min_move, flip)"),
    ("output={tmp}/file.txt", "{tmp}/file.txt: output= is a file, not a folder"),
    # parsed with the config; whether the machine has one, torch says when the detector is built (before any work)
    ("device=cuda", "device=cuda: no such CUDA device here"),
])  # fmt: skip
def test_bad_values_through_the_real_cli_are_one_line(tmp_path, override, message):
    (tmp_path / "file.txt").write_text("x")
    out = [] if override.startswith("output=") else [f"output={tmp_path}/out"]
    proc = run_script("detect.py", f"input={PHOTOS / 'obamas.jpg'}", *out, override.format(tmp=tmp_path),
                      f"hydra.run.dir={tmp_path / 'run'}", check=False)
    assert proc.returncode == 2 and proc.stderr.startswith(f"error: {message.format(tmp=tmp_path)}")
    assert proc.stderr.count("\n") == 1 and not (tmp_path / "out").exists()


def test_a_quoted_path_with_spaces_brackets_and_accents_is_read(tmp_path):
    photo = tmp_path / "my photos" / "Zoë (2)=a.jpg"
    photo.parent.mkdir()
    photo.write_bytes((PHOTOS / "obamas.jpg").read_bytes())
    run_script("detect.py", f"input='{photo}'", f"output={tmp_path / 'out'}", f"hydra.run.dir={tmp_path / 'run'}")
    assert len(json.loads((tmp_path / "out" / "Zoë (2)=a.json").read_text())["faces"]) == 2


def test_visualize_refuses_a_face_index_beyond_the_test_split(tiny_checkpoint, tiny_root, tmp_path):
    proc = run_script("visualize.py", f"ckpt_path={tiny_checkpoint}", f"paths.data_dir={tiny_root}", "face_index=99",
                      "plots=[conv1]", f"output={tmp_path}", f"hydra.run.dir={tmp_path / 'run'}", check=False)
    assert proc.returncode == 2 and "face_index=99: the test split has 8 faces (0 to 7)" in proc.stderr


def test_compare_prints_the_good_jobs_and_names_a_corrupt_metrics_file(tmp_path):
    for job, metrics in (("0", {"best_val_nme": 0.1, "test": {"nme": 0.09}}), ("1", None)):
        (tmp_path / job / ".hydra").mkdir(parents=True)
        (tmp_path / job / ".hydra" / "overrides.yaml").write_text(f"- model.dropout=0.{job}\n")
        (tmp_path / job / "metrics.json").write_text(json.dumps(metrics) if metrics else '{"best_val_nme": NaN, oops')
    proc = run_script("compare.py", str(tmp_path), check=False)
    assert proc.returncode == 2 and "| 0 | 0.0 | 0.1000 | 0.0900 |" in proc.stdout
    assert proc.stderr.startswith(f"error: {tmp_path / '1' / 'metrics.json'}: not a metrics file") and proc.stderr.count("\n") == 1



@pytest.mark.parametrize("file, content, reason", [
    ("metrics.json", '{"test": "oops"}', "not a JSON object with a `test` object"),
    ("metrics.json", '{"best_val_nme": "low"}', "a metric that is not a number"),
    ("metrics.json", "[" * 100_000, "maximum recursion depth"),
    (".hydra/overrides.yaml", "- [unclosed", "while parsing"),
    (".hydra/overrides.yaml", "model: alexnet", "not a list of key=value strings"),
])  # fmt: skip
def test_compare_names_a_job_file_that_is_not_what_training_writes(tmp_path, file, content, reason):
    for job in ("0", "1"):
        (tmp_path / job / ".hydra").mkdir(parents=True)
        (tmp_path / job / ".hydra" / "overrides.yaml").write_text(f"- model.dropout=0.{job}\n")
        (tmp_path / job / "metrics.json").write_text(json.dumps({"best_val_nme": 0.1, "test": {"nme": 0.09}}))
    (tmp_path / "1" / file).write_text(content)
    proc = run_script("compare.py", str(tmp_path), check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "| 0 |" in proc.stdout
    assert proc.stderr.startswith(f"error: {tmp_path / '1' / file}: not a") and reason in proc.stderr and proc.stderr.count("\n") == 1


def test_export_refuses_an_already_exported_file(tmp_path):
    proc = run_script("export.py", f"ckpt_path={tmp_path}/model.onnx", f"hydra.run.dir={tmp_path / 'run'}", check=False)
    assert proc.returncode == 2 and "model.onnx: already an exported model" in proc.stderr


@pytest.mark.parametrize("call, message", [
    (lambda det: det(None), "expected an image path or a uint8 array (H, W[, 3 or 4]), got NoneType"),
    (lambda det: det.detect_many("x.jpg"), "detect_many takes a list of photos, got one str"),
    (lambda det: det(np.zeros((0, 0, 3), np.uint8)), "empty image"),
    (lambda det: det(np.zeros((4, 4, 2), np.uint8)), "unsupported image shape"),
    (lambda det: keypoints.Detector(refine=-1), "refine=-1: must be a whole number >= 0 and <= 10"),
])  # fmt: skip
def test_the_python_api_says_what_is_wrong(call, message):
    with pytest.raises(KeypointsError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")):
        call(keypoints.Detector())


@pytest.mark.parametrize("script, override, message", [
    ("train.py", "nosuchkey=1", "Could not override 'nosuchkey'.; To append to your config use +nosuchkey=1"),
    ("evaluate.py", "nosuchkey=1", "Could not override 'nosuchkey'."),
    ("pseudo_label.py", "model=nosuch", "Could not override 'model'"),
    ("train.py", "model=nosuch", "In 'train': Could not find 'model/nosuch'; Available options in 'model':; alexnet"),
    ("train.py", "model.dropout=high", "model.dropout='high': must be a share from 0 to 1 (below 1), or a list of them"),
])  # fmt: skip
def test_the_checkouts_hydra_scripts_give_hydras_errors_in_one_line_as_the_commands_do(tmp_path, script, override, message):
    proc = run_script(script, override, f"hydra.run.dir={tmp_path}", check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and proc.stderr.startswith(f"error: {message}"), proc.stderr


@pytest.mark.parametrize("suffix, what", [(".ckpt", "a FIFO, not a checkpoint file"), (".onnx", "a FIFO, not an ONNX model file")])
def test_a_fifo_as_the_model_is_named_for_what_it_is_not_as_missing(tmp_path, suffix, what):
    fifo = tmp_path / f"model{suffix}"
    os.mkfifo(fifo)
    proc = run_script("detect.py", f"input={PHOTOS / 'obamas.jpg'}", f"output={tmp_path / 'out'}", f"ckpt_path={fifo}", check=False)
    assert proc.returncode == 2 and proc.stderr.startswith(f"error: {fifo}: {what}"), proc.stderr


def test_a_photo_above_a_small_pixel_limit_says_its_size(tmp_path):
    """"0 megapixels, above the limit of 0.1" said nothing: the size is given to three figures."""
    proc = run_script("detect.py", f"input={PHOTOS / 'obamas.jpg'}", f"output={tmp_path / 'out'}", "max_megapixels=0.1", check=False)
    assert proc.returncode == 2 and "obamas.jpg: 0.38 megapixels, above the limit of 0.1" in proc.stderr


def test_pseudo_label_refuses_a_folder_as_its_output_before_labelling(tmp_path):
    proc = run_script("pseudo_label.py", f"images={PHOTOS}", f"output={tmp_path}", "overwrite=true", "~teachers.keypoints",
                      f"hydra.run.dir={tmp_path / 'run'}", check=False)
    assert proc.returncode == 2 and f"output={tmp_path}: a folder; output= names the CSV to write" in proc.stderr
