"""The model shipped inside the package: loaded when no checkpoint is given, small, and accurate
end to end (YuNet boxes, no labels used) on real faces in the markup it promises (300-W's dev
photos), upright and tilted."""

import cv2
import numpy as np
import pytest

import keypoints
from conftest import PHOTOS, SHARED, run_script
from keypoints.benchmarks import accuracy as benchmark
from keypoints.inference.model_files import DEFAULT_MODEL


@pytest.fixture(scope="module")
def detector():
    return keypoints.Detector()


def test_the_default_model_is_shipped_small_and_face_framed(detector):
    assert DEFAULT_MODEL.is_file() and DEFAULT_MODEL.stat().st_size <= 20e6
    assert detector.frame is not None and detector.size == 96  # conf/experiment/face_300w_student.yaml


def _tilted(image: np.ndarray, points: np.ndarray, angle: float):
    h, w = image.shape[:2]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    return cv2.warpAffine(image, turn, (w, h), borderMode=cv2.BORDER_REPLICATE), points @ turn[:, :2].T + turn[:, 2]


@pytest.mark.parametrize("angle", [0, 25, -25])
def test_default_model_is_accurate_end_to_end_on_300w_faces(detector, angle):
    """8 of 300-W's dev faces (people's labels in the iBUG markup the JSON promises): every face
    found and a median NME under 5% (the previous default, trained on the Udacity frames' own
    markup, scored 5.7% on the dev set; the full set's figure comes from scripts/benchmark.py)."""
    w300 = SHARED / "data" / "300w"
    images, truths = benchmark.load_labelled(w300 / "dev_keypoints.csv", w300 / "dev", limit=8)
    errors = []
    for image, truth in zip(images, truths):
        image, truth = _tilted(image, truth, angle)
        pred = benchmark.match(benchmark.ours(detector)(image), truth)
        errors.append(np.inf if pred is None else benchmark.nme(pred, truth))
    errors = np.array(errors)
    assert np.isfinite(errors).mean() >= 7 / 8, f"faces missed at {angle} degrees: {errors}"
    assert np.median(errors[np.isfinite(errors)]) < 0.05, errors


def test_the_clis_use_the_default_model_without_a_checkpoint(tmp_path):
    """Start-up, so a child process: a fresh Python finds the packaged model, configs and YuNet."""
    out = tmp_path / "out"
    proc = run_script("detect.py", f"input={PHOTOS / 'obamas.jpg'}", f"output={out}", f"hydra.run.dir={tmp_path / 'run'}",
                      process=True)
    assert "obamas.jpg: 2 face(s)" in proc.stdout and (out / "obamas.json").is_file()
