"""The inference wing needs no torch: `keypoints detect` and `keypoints.Detector()` on the shipped
model run with torch, Lightning and albumentations impossible to import (what the lean install,
`pip install keypoints`, has), and give the full install's points; a checkpoint without torch is one
line naming the extra. tests/test_wheel.py checks the same in a fresh venv with no torch in it."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import PHOTOS, REPO, run_script
from keypoints.training.data.transforms import face_eval, seed_eval
from keypoints.inference.pipeline import EvalTransform

# A Python that cannot import the training stack: an import hook refuses it, as a lean install would.
BLOCK = ("import sys, importlib.abc\n"
         "class Block(importlib.abc.MetaPathFinder):\n"
         "    def find_spec(self, name, path=None, target=None):\n"
         "        if name.split('.')[0] in ('torch', 'lightning', 'albumentations', 'torchmetrics', 'wandb', 'scipy', 'matplotlib'):\n"
         "            raise ImportError(f'No module named {name!r} (blocked: the lean install)')\n"
         "sys.meta_path.insert(0, Block())\n")


def _lean(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK + code, *args], capture_output=True, text=True, cwd=REPO, timeout=300)


def test_detect_runs_without_torch_and_gives_the_full_installs_points(tmp_path):
    photo = PHOTOS / "obamas.jpg"
    full, lean = tmp_path / "full", tmp_path / "lean"
    run_script("detect.py", f"input={photo}", f"output={full}", f"hydra.run.dir={tmp_path / 'run1'}")
    proc = _lean("import sys; from keypoints.commands import main; sys.argv = ['keypoints', *sys.argv[1:]]; main()",
                 "detect", f"input={photo}", f"output={lean}", f"hydra.run.dir={tmp_path / 'run2'}")
    assert proc.returncode == 0, proc.stderr
    a, b = (json.loads((d / "obamas.json").read_text()) for d in (full, lean))
    assert len(a["faces"]) == len(b["faces"]) == 2
    for fa, fb in zip(a["faces"], b["faces"]):
        assert fa["box"] == fb["box"]
        np.testing.assert_allclose(fa["keypoints"], fb["keypoints"], atol=0.01)


def test_the_api_loads_none_of_the_training_stack():
    code = ("import sys, keypoints; faces = keypoints.Detector()(sys.argv[1]); "
            "assert len(faces) == 2, faces; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'lightning', 'albumentations')))")
    proc = subprocess.run([sys.executable, "-c", code, str(PHOTOS / "obamas.jpg")], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr


def test_a_checkpoint_without_torch_is_one_line_naming_the_extra(tmp_path):
    proc = _lean("import sys, keypoints\n"
                 "try:\n    keypoints.Detector.from_checkpoint(sys.argv[1])\n"
                 "except keypoints.KeypointsError as e:\n    print(e)\n", str(tmp_path / "mine.ckpt"))
    assert proc.returncode == 0, proc.stderr
    assert "pip install 'keypoints[train]'" in proc.stdout and len(proc.stdout.strip().splitlines()) == 1


@pytest.mark.parametrize("grayscale", [True, False])
def test_the_eval_pipeline_gives_albumentations_arrays(grayscale):
    """Training composes the input with albumentations, inference with OpenCV: the same arrays."""
    rng = np.random.default_rng(0)
    crop, frame = rng.integers(0, 256, (112, 112, 3), np.uint8), rng.integers(0, 256, (180, 150, 3), np.uint8)
    np.testing.assert_array_equal(EvalTransform(None, grayscale)(crop), face_eval(grayscale)(image=crop)["image"])
    np.testing.assert_array_equal(EvalTransform(96, grayscale)(frame), seed_eval(96, grayscale)(image=frame)["image"])
