"""Sources a user can mistype (issue 32's probe): each is one line naming it, exit 2, nothing written,
and a file:// URL is guarded like the plain path it names (an input is never overwritten)."""

import shutil

import numpy as np
import pytest

import keypoints
from conftest import PHOTOS, run_script


@pytest.mark.parametrize("value, message", [
    ("-1", "input=-1: not a camera number"),
    ("true", "input=true: not a source"),
    ("[a,b]", "input=['a', 'b']: one source a run"),
    ("", "input: required"),
])  # fmt: skip
def test_a_bad_input_is_one_line(tmp_path, value, message):
    proc = run_script("detect.py", f"input={value}", f"output={tmp_path / 'out'}", f"hydra.run.dir={tmp_path / 'run'}", check=False)
    assert proc.returncode == 2 and proc.stderr.startswith(f"error: {message}"), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_an_empty_output_is_one_line(tmp_path):
    proc = run_script("detect.py", f"input={PHOTOS / 'obamas.jpg'}", "output=", f"hydra.run.dir={tmp_path / 'run'}", check=False)
    assert proc.returncode == 2 and proc.stderr.startswith("error: output: empty"), proc.stderr


def test_a_file_url_is_guarded_like_its_path(tmp_path):
    """input=file:///D/photo.jpg output=/D overwrite=true once replaced the input itself."""
    photo = tmp_path / "obamas.png"
    shutil.copy(PHOTOS / "obamas.jpg", photo)  # a .png input: its drawing would be obamas.png too
    before = photo.read_bytes()
    proc = run_script("detect.py", f"input=file://{photo}", f"output={tmp_path}", "overwrite=true",
                      f"hydra.run.dir={tmp_path / 'run'}", check=False)
    assert proc.returncode == 2 and "input" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert photo.read_bytes() == before
    ok = run_script("detect.py", f"input=file://{photo}", f"output={tmp_path / 'out'}", f"hydra.run.dir={tmp_path / 'run2'}")
    assert "2 face(s)" in ok.stdout and (tmp_path / "out" / "obamas.json").is_file()


@pytest.mark.parametrize("device", ["banana", "cuda"])
def test_a_device_this_machine_lacks_is_a_keypoints_error(device):
    import torch

    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(keypoints.KeypointsError, match=f"device=.?{device}"):
        keypoints.Detector(device=device)(np.zeros((64, 64, 3), np.uint8))
