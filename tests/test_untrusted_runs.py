"""The probe of issue 32, row by row: each case gets one line (or the documented answer), never a
crash, a traceback, a silently wrong output or a lost input."""

import json
import os
import signal
import subprocess
import sys

import cv2
import numpy as np
import onnx
import pytest
from hydra import compose
from onnx import TensorProto, helper

import keypoints
from conftest import PHOTOS, REPO, initialize_for, run_script
from keypoints.core.errors import KeypointsError
from keypoints.inference.model_files import DEFAULT_ONNX_MODEL

SHIPPED_ONNX = DEFAULT_ONNX_MODEL


def one_line(proc, message: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert message in proc.stderr, proc.stderr


def small_video(path, frames, fps=10):
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


# row 1: a file:// URL is the path it names, guarded as one
def test_a_file_url_to_a_video_in_the_output_folder_is_refused(tmp_path):
    frame = cv2.imread(str(PHOTOS / "obamas.jpg"))
    clip = small_video(tmp_path / "clip.mp4", [frame] * 3)
    before = clip.read_bytes()
    proc = run_script("detect.py", f"input=file://{clip}", f"output={tmp_path}", "overwrite=true", check=False)
    one_line(proc, f"{clip}: output would overwrite an input")
    assert clip.read_bytes() == before


# row 5: a negative camera number
def test_a_negative_camera_number_is_one_line(tmp_path):
    proc = run_script("detect.py", "input=-1", f"output={tmp_path}", check=False, process=True, timeout=120)
    one_line(proc, "input=-1: not a camera number")


# row 6: a video's frames within the pixel budget, by its declared size
def test_a_video_above_the_pixel_budget_is_refused_before_a_frame_is_decoded(tmp_path):
    clip = small_video(tmp_path / "clip.mp4", [np.zeros((480, 640, 3), np.uint8)] * 3)
    proc = run_script("detect.py", f"input={clip}", f"output={tmp_path / 'out'}", "max_megapixels=0.1", check=False)
    one_line(proc, f"{clip}: frames of 0.307 megapixels, above the limit of 0.1")
    assert not list((tmp_path / "out").glob("*.mp4"))


def test_a_run_folder_with_a_corrupt_metrics_file_is_one_line(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.json").write_text('{"best_ckpt": ')
    proc = run_script("detect.py", f"input={PHOTOS / 'obamas.jpg'}", f"output={tmp_path / 'out'}",
                      f"ckpt_path={tmp_path / 'run'}", check=False)
    one_line(proc, f"{tmp_path / 'run' / 'metrics.json'}: not a metrics file")


def test_a_run_folder_that_cannot_be_made_is_one_line(tmp_path):
    proc = run_script("detect.py", f"input={PHOTOS / 'obamas.jpg'}", "hydra.run.dir=/proc/x", check=False)
    one_line(proc, "/proc/x")


# row 14: Hydra's own errors
@pytest.mark.parametrize("override, message", [
    ("detecter.refine=2", "Could not override 'detecter.refine'"),
    ("detector=nonexistent", "Could not find 'detector/nonexistent'"),
    ("input=a=b=(", "input=a=b=("),
    ("~detector", "detector: Key 'detector' is not in struct"),
])  # fmt: skip
def test_hydras_own_errors_are_one_line_and_exit_2(override, message, tmp_path):
    proc = run_script("detect.py", f"input={PHOTOS / 'obamas.jpg'}", f"output={tmp_path}", override, check=False)
    one_line(proc, message)


# row 8: a model file checked against its metadata at load
def _with_metadata(model, source_path):
    source = onnx.load(str(source_path))
    for prop in source.metadata_props:
        model.metadata_props.add(key=prop.key, value=prop.value)
    return model


def test_an_onnx_model_with_lying_metadata_is_refused_at_load(tmp_path):
    model = onnx.load(str(SHIPPED_ONNX))
    for prop in model.metadata_props:
        if prop.key == "input_size":
            prop.value = json.dumps(int(json.loads(prop.value)) // 2)
    onnx.save(model, str(tmp_path / "lying.onnx"))
    proc = run_script("detect.py", f"input={PHOTOS / 'obamas.jpg'}", f"output={tmp_path / 'out'}",
                      f"ckpt_path={tmp_path / 'lying.onnx'}", check=False)
    one_line(proc, f"{tmp_path / 'lying.onnx'}: does not run as its metadata says")
    assert not (tmp_path / "out" / "obamas.png").exists()


def test_an_onnx_model_of_the_wrong_output_or_a_fixed_batch_is_refused_at_load(tmp_path):
    size = int(json.loads({p.key: p.value for p in onnx.load(str(SHIPPED_ONNX)).metadata_props}["input_size"]))
    for name, batch, out_shape in (("pooled", "N", ["N", 3, 1, 1]), ("batch1", 1, [1, 3, 1, 1])):
        graph = helper.make_graph([helper.make_node("GlobalAveragePool", ["input"], ["output"])], name,
                                  [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, size, size])],
                                  [helper.make_tensor_value_info("output", TensorProto.FLOAT, out_shape)])
        model = _with_metadata(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), SHIPPED_ONNX)
        model.ir_version = 8
        onnx.save(model, str(tmp_path / f"{name}.onnx"))
        with pytest.raises(KeypointsError, match=rf"{name}.onnx: does not run as its metadata says"):
            keypoints.Detector.from_file(tmp_path / f"{name}.onnx", backend="onnxruntime")


# row 13: devices in the Python API
@pytest.mark.parametrize("device, message", [("cuda", "device=cuda: no such CUDA device here"),
                                             ("banana", "device='banana': not a device")])
def test_a_device_this_machine_lacks_is_a_keypoints_error(device, message):
    with pytest.raises(KeypointsError, match=message):
        keypoints.Detector(device=device)


# row 17: arrays within the pixel budget
def test_an_array_above_the_pixel_budget_is_refused():
    with pytest.raises(KeypointsError, match=r"photo 0: 400 megapixels, above the limit of 100"):
        keypoints.Detector()(np.broadcast_to(np.zeros(1, np.uint8), (20000, 20000)))


# row 16: frames whose size changes
def test_a_stream_whose_frame_size_changes_is_read_at_its_first_size_throughout(tmp_path):
    """OpenCV's FFmpeg reader scales every frame of a stream to its first frame's size (a documented
    limit, docs/RELIABILITY.md): each JSON line's size is the frame the model saw, and its keypoints are
    in that frame's pixels. A reader that hands over a frame of another size gets it drawn scaled and
    its JSON line keeps its own size (runner._video)."""
    photo = cv2.imread(str(PHOTOS / "obamas.jpg"))
    small = cv2.resize(photo, (photo.shape[1] // 2, photo.shape[0] // 2))
    clip = tmp_path / "sizes.avi"  # a raw MJPEG stream (FFmpeg reads it by its content): each frame a JPEG of its own size
    clip.write_bytes(b"".join(cv2.imencode(".jpg", x)[1].tobytes() for x in (photo, photo, small, small)))
    run_script("detect.py", f"input={clip}", f"output={tmp_path / 'out'}", "video.detect_every=1")
    lines = [json.loads(line) for line in (tmp_path / "out" / "sizes.jsonl").read_text().splitlines()]
    assert [(r["width"], r["height"]) for r in lines] == [(photo.shape[1], photo.shape[0])] * 4
    for record in lines:  # two faces in every frame, their points inside the frame the JSON names
        points = np.array([face["keypoints"] for face in record["faces"]])
        assert len(record["faces"]) == 2 and points[..., 0].max() < record["width"] and points[..., 1].max() < record["height"]


# rows 7, 15, 17: the web server
@pytest.fixture(scope="module")
def client():
    from starlette.testclient import TestClient
    from keypoints.web.app import create_app
    with initialize_for("serve"):
        cfg = compose("serve", overrides=["max_concurrency=1"])
    return TestClient(create_app(cfg), base_url="http://127.0.0.1")


def test_a_boundary_over_256_characters_is_a_malformed_upload(client):
    boundary = "b" * 300
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n\r\n".encode()
            + (PHOTOS / "obamas.jpg").read_bytes() + f"\r\n--{boundary}--\r\n".encode())
    answer = client.post("/api/detect", content=body, headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert answer.status_code == 400 and answer.json()["detail"].startswith("malformed multipart upload")


def test_two_files_in_one_upload_are_refused(client):
    photo = (PHOTOS / "obamas.jpg").read_bytes()
    answer = client.post("/api/detect", files=[("file", ("a.jpg", photo)), ("file", ("b.jpg", photo))])
    assert answer.status_code == 400 and "one photo" in answer.json()["detail"]


def test_no_page_loads_from_the_internet_and_nosniff_is_sent(client):
    assert client.get("/docs").status_code == 404 and client.get("/redoc").status_code == 404
    answer = client.get("/")
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "cdn." not in answer.text and "/docs" not in answer.text and "/redoc" not in answer.text
    assert client.get("/openapi.json").status_code == 200  # the API's description stays, as JSON


# row 9: Ctrl-C during a single photo
def test_ctrl_c_during_one_photo_exits_130_with_nothing_half_written(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "scripts/detect.py", f"input={PHOTOS / 'the_beatles.jpg'}", f"output={out}"],
                            cwd=REPO, env={**os.environ, "WANDB_SILENT": "true"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    import time
    time.sleep(4)  # inside the model's start-up or its run
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode in (0, 130) and "Traceback" not in stderr, stderr
    if proc.returncode == 130:
        assert stderr.strip().splitlines()[-1].startswith("error: interrupted")
    assert not out.exists() or all(".part" not in p.name for p in out.iterdir())
