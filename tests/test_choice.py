"""backend=auto on a CPU (keypoints.inference.choice): the shipped model's int8 or float file by a measurement
on this CPU, remembered per CPU and ONNX Runtime version; faked timings, real files and crops."""

import json

import numpy as np
import pytest

import keypoints
from keypoints.inference import choice
from keypoints.inference.backends import explain, resolve_backend
from keypoints.inference.model_files import DEFAULT_INT8_MODEL, DEFAULT_ONNX_MODEL


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    """A cache of its own, and no choice remembered in this process."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    choice.shipped_file.cache_clear()
    yield tmp_path / "cache" / "keypoints" / "backend.json"
    choice.shipped_file.cache_clear()


def clock(seconds_float: float, seconds_int8: float):
    """A timer for measure(): each float batch takes `seconds_float`, each int8 batch `seconds_int8`
    (measure times the float file first, RUNS batches, then the int8 file)."""
    now, calls = [0.0], [0]

    def timer() -> float:
        if calls[0] % 2:  # the end of a batch
            now[0] += seconds_float if calls[0] < 2 * choice.RUNS else seconds_int8
        calls[0] += 1
        return now[0]
    return timer


@pytest.mark.parametrize("float_s, int8_s, chosen", [(0.002, 0.001, "int8"), (0.001, 0.002, "float")])
def test_the_faster_file_is_chosen_by_its_measured_time(float_s, int8_s, chosen):
    measured = choice.measure(DEFAULT_INT8_MODEL, DEFAULT_ONNX_MODEL, timer=clock(float_s, int8_s))
    assert measured["float_ms"] == pytest.approx(1000 * float_s) and measured["int8_ms"] == pytest.approx(1000 * int8_s)
    assert 0 < measured["apart"] < choice.AGREE and measured["crops"] == 4  # the real files on the real crops agree
    which, why = choice.decide(measured)
    assert which == chosen and f"{1000 * int8_s:.2f} ms" in why


def test_an_int8_file_whose_points_stray_is_not_chosen_however_fast():
    which, why = choice.decide({"int8_ms": 0.1, "float_ms": 5.0, "apart": 3 * choice.AGREE, "crops": 4})
    assert which == "float" and "from float's" in why
    which, why = choice.decide({"refused": "face_mobile.int8.onnx: saturates"})
    assert which == "float" and "saturates" in why


def test_the_choice_is_measured_once_per_cpu_and_runtime_and_remembered(cache_home, monkeypatch):
    runs = []
    monkeypatch.setattr(choice, "measure", lambda *files, **_: runs.append(files) or
                        {"int8_ms": 2.0, "float_ms": 1.0, "apart": 0.005, "crops": 4})
    first = choice.shipped_file()
    assert first.path == DEFAULT_ONNX_MODEL and "measured now" in first.why and len(runs) == 1
    choice.shipped_file.cache_clear()  # as a new process would
    again = choice.shipped_file()
    assert again.path == DEFAULT_ONNX_MODEL and "cached" in again.why and len(runs) == 1
    assert next(iter(json.loads(cache_home.read_text()).values()))["file"] == "float"
    monkeypatch.setattr(choice.ort, "__version__", "0.0.1")  # another ONNX Runtime: measured again
    choice.shipped_file.cache_clear()
    choice.shipped_file()
    assert len(runs) == 2 and len(json.loads(cache_home.read_text())) == 2


@pytest.mark.parametrize("content", [b"not json", b"[1, 2]", b'{"x": 1}', b"\xff\xfe"])
def test_a_broken_cache_is_measured_around_and_rewritten(cache_home, content):
    cache_home.parent.mkdir(parents=True)
    cache_home.write_bytes(content)
    got = choice.shipped_file()
    assert got.path in (DEFAULT_INT8_MODEL, DEFAULT_ONNX_MODEL) and "measured now" in got.why
    assert choice.machine_key() in json.loads(cache_home.read_text())


def test_a_cache_that_cannot_be_written_still_gives_a_choice(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))  # a file where the folder should be
    choice.shipped_file.cache_clear()
    try:
        assert choice.shipped_file().path in (DEFAULT_INT8_MODEL, DEFAULT_ONNX_MODEL)
    finally:
        choice.shipped_file.cache_clear()


def test_auto_runs_the_chosen_file_and_says_why(cache_home, monkeypatch):
    monkeypatch.setattr(choice, "measure", lambda *files, **_: {"int8_ms": 2.0, "float_ms": 1.0, "apart": 0.005, "crops": 4})
    assert resolve_backend("auto", "cpu") == ("onnxruntime", DEFAULT_ONNX_MODEL)
    detector = keypoints.Detector()
    assert detector.predictor.path == DEFAULT_ONNX_MODEL and len(detector(np.zeros((64, 64, 3), np.uint8))) == 0
    assert explain("auto", "cpu").startswith("face_mobile.onnx under ONNX Runtime (auto: int8 2.00 ms, float 1.00 ms")
    assert resolve_backend("onnxruntime-int8", "cpu")[1] == DEFAULT_INT8_MODEL  # a named file is never measured


def test_a_choice_another_process_wrote_while_this_one_measured_stands(cache_home, monkeypatch):
    """Two first runs at once both measure; the first choice written is the one every run keeps, so resume
    never sees the file (and so the outputs' provenance) flip between runs."""
    def measure_while_another_writes(*files, **_):
        cache_home.parent.mkdir(parents=True, exist_ok=True)
        cache_home.write_text(json.dumps({choice.machine_key(): {"file": "float", "why": "the other's", "when": "then"}}))
        return {"int8_ms": 1.0, "float_ms": 2.0, "apart": 0.005, "crops": 4}

    monkeypatch.setattr(choice, "measure", measure_while_another_writes)
    got = choice.shipped_file()
    assert got.path == DEFAULT_ONNX_MODEL and got.why.startswith("the other's")


def test_without_its_probe_crops_auto_takes_int8_and_says_why(cache_home, monkeypatch, tmp_path):
    monkeypatch.setattr(choice, "PROBE_FACES", tmp_path / "gone.png")
    got = choice.shipped_file()
    assert got.path == DEFAULT_INT8_MODEL and "not measured" in got.why and "gone.png" in got.why
    assert not cache_home.exists()  # measured next time, once the file is back
