"""The package as a new user gets it: one wheel built from the project (into a temporary folder),
installed into a fresh venv with its dependencies from the registry, run outside the repository.
The lean install: `pip install keypoints[web]`, no torch in the venv, the same JSON as the checkout's
full install. Slow (a venv of OpenCV, ONNX Runtime, FastAPI... from pip's cache): make test-slow."""

import json
import re
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import distributions
from pathlib import Path

import httpx
import pytest

from conftest import DATA, PHOTOS, REPO, run_script
from keypoints.inference.model_files import DEFAULT_MODEL
from keypoints.web.launch import running

pytestmark = pytest.mark.slow
PHOTO = PHOTOS / "obamas.jpg"
MAX_MB = 25
# Every file the wheel may hold: the code, the shipped model and its int8 copy, the 3D face model with its
# licences, the crops auto times the model files on, YuNet with its licence,
# the packaged configs, the web page, and the wheel's own metadata. A data set, a test, a run's output
# (outputs/, .hydra/, *.log, *.json results) matches none of these.
ALLOWED = [r"keypoints/(.+/)?[a-z_0-9]+\.py", r"hydra_plugins/keypoints_configs/__init__\.py", r"keypoints/weights/([a-z_0-9.]+\.(ckpt|onnx|npz)|probe_faces\.png|TERMS\.md|LICENSE-3DDFA(_V2)?)",
           r"keypoints/inference/faces/yunet/(LICENSE|README\.md|yunet_[a-z_0-9]+\.onnx)", r"keypoints/conf/([a-z_]+/)?[a-z_0-9]+\.yaml",
           r"keypoints/web/static/index\.html", r"keypoints-[^/]+\.dist-info/(METADATA|WHEEL|RECORD|entry_points\.txt|top_level\.txt)",
           r"keypoints-[^/]+\.dist-info/licenses/(LICENSE|src/keypoints/weights/(TERMS\.md|LICENSE-3DDFA(_V2)?)|src/keypoints/inference/faces/yunet/LICENSE)"]
REQUIRED = [f"keypoints/weights/{DEFAULT_MODEL.name}", "keypoints/inference/faces/yunet/yunet_n_640_640.onnx", "keypoints/inference/faces/yunet/yunet_n_dynamic.onnx",
            "keypoints/inference/faces/yunet/LICENSE", "keypoints/weights/TERMS.md", "keypoints/weights/face_model_68.npz",
            "keypoints/weights/LICENSE-3DDFA", "keypoints/weights/LICENSE-3DDFA_V2", "keypoints/weights/probe_faces.png",
            "keypoints/web/static/index.html", "keypoints/__main__.py",
            *(f"keypoints/conf/{name}.yaml" for name in ("detect", "filter", "serve", "export", "benchmark")),
            *(f"keypoints/conf/{group}/default.yaml" for group in ("paths", "hydra", "video", "overlays")),
            "keypoints/inference/config.py", "keypoints/inference/faces/config.py", "hydra_plugins/keypoints_configs/__init__.py"]


def _run(*command, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=1200, **kwargs)
    assert proc.returncode == 0, f"{command}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """`pip wheel` of a copy of the project's build inputs (so the checkout gets no build/ or egg-info)."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp / "dist", source)
    [built] = (tmp / "dist").glob("keypoints-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh venv with the wheel and its `web` extra, no torch (the lean install), every dependency at
    this environment's version (the same OpenCV gives the same faces; the registry's latest may differ
    by a fraction of a pixel)."""
    env = tmp_path_factory.mktemp("venv")
    _run(sys.executable, "-m", "venv", env / "venv")
    pip = [env / "venv" / "bin" / "python", "-m", "pip", "install", "-q"]
    pins = sorted({f"{d.metadata['Name']}=={d.version}" for d in distributions()
                   if d.metadata["Name"] and d.metadata["Name"].lower() != "keypoints"})
    (env / "constraints.txt").write_text("\n".join(pins) + "\n")
    _run(*pip, "-c", env / "constraints.txt", f"{wheel}[web]")
    site = next((env / "venv" / "lib").glob("python3*/site-packages"))
    size = sum(p.stat().st_size for p in site.rglob("*") if p.is_file())
    print(f"lean install: {size / 2**20:.0f} MiB in site-packages")  # the figure docs/RESULTS.md "Install" reports
    return env / "venv"


def test_the_lean_install_has_no_training_stack_and_says_what_a_checkpoint_needs(venv, tmp_path):
    python = venv / "bin" / "python"
    absent = _run(python, "-c", "import importlib.util as u; print([m for m in ('torch', 'lightning', 'albumentations', "
                  "'wandb', 'torchmetrics') if u.find_spec(m)])", cwd=tmp_path).stdout.strip()
    assert absent == "[]"
    proc = subprocess.run([venv / "bin" / "keypoints", "detect", f"input={PHOTO}", "output=out", "ckpt_path=mine.ckpt"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and "pip install 'keypoints[train]'" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    export = subprocess.run([venv / "bin" / "keypoints", "export", "output=model.onnx"], capture_output=True, text=True, cwd=tmp_path)
    assert export.returncode == 2 and export.stderr.strip() == ("error: keypoints export needs torch, which this install does not "
                                                                "have: pip install 'keypoints[train]'")


def test_the_lean_install_benchmarks_a_labelled_folder_as_the_checkout_does(venv, tmp_path):
    """`keypoints benchmark` needs no torch: the same figures as the full install's (timings aside);
    its plot needs matplotlib, which the lean install has not: skipped with a line, never half drawn."""
    args = ["limit=6", "peers=false", f"paths.data_dir={DATA}"]
    proc = _run(venv / "bin" / "keypoints", "benchmark", *args, "output=lean", cwd=tmp_path)
    assert "ced.png: not drawn, matplotlib is not installed" in proc.stdout and not (tmp_path / "lean" / "ced.png").exists()
    run_script("benchmark.py", *args, f"output={tmp_path / 'full'}")
    lean, full = (json.loads((tmp_path / run / "benchmark.json").read_text()) for run in ("lean", "full"))
    untimed = lambda rows: {name: {k: v for k, v in row.items() if k != "ms_per_image"} for name, row in rows.items()}  # noqa: E731
    assert untimed(lean) == untimed(full) and (tmp_path / "full" / "ced.png").is_file()


def test_the_wheel_holds_the_model_yunet_configs_page_and_licence_and_nothing_else(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    strays = [n for n in names if not any(re.fullmatch(p, n) for p in ALLOWED)]
    assert not strays, f"files that should not ship: {strays}"
    assert not [n for n in REQUIRED if n not in names]
    assert not [n for n in names if n.startswith("keypoints/") and re.search(r"/(tests?|outputs|\.hydra)/", n)]
    size_mb = wheel.stat().st_size / 2**20
    print(f"{wheel.name}: {size_mb:.1f} MiB, {len(names)} files")
    assert size_mb <= MAX_MB
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert re.search(r"^keypoints = keypoints\.commands:main$", entry_points, re.M)


def test_the_installed_commands_detect_and_serve_as_the_checkout_does(venv, tmp_path):
    """One test for both, so pytest-xdist's workers build one venv, not two."""
    here = tmp_path / "elsewhere"  # the user's folder, far from the repository
    here.mkdir()
    keypoints = venv / "bin" / "keypoints"
    assert "detect" in _run(keypoints, "--help", cwd=here).stdout
    proc = _run(keypoints, "detect", f"input={PHOTO}", "output=out", cwd=here)
    assert "obamas.jpg: 2 face(s)" in proc.stdout
    assert sorted(p.relative_to(here).as_posix() for p in here.rglob("*")) == [  # the outputs and what made them
        "out", "out/.keypoints-made.log", "out/obamas.json", "out/obamas.png"]
    run_script("detect.py", f"input={PHOTO}", f"output={tmp_path / 'checkout'}")
    checkout = json.loads((tmp_path / "checkout" / "obamas.json").read_text())
    assert json.loads((here / "out" / "obamas.json").read_text()) == checkout

    shutil.rmtree(here / "out")
    with running([str(keypoints), "serve"], ["log_level=warning"], tmp_path / "serve.log", cwd=here) as (_, url):
        answer = httpx.post(url + "/api/detect", files={"file": ("obamas.jpg", PHOTO.read_bytes(), "image/jpeg")}, timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {**checkout, "image": "obamas.jpg"}
    assert list(here.iterdir()) == []  # serve writes nothing
    installed = Path(_run(venv / "bin" / "python", "-c", "import keypoints; print(keypoints.__file__)", cwd=here).stdout.strip())
    assert installed.is_relative_to(venv) and not (installed.parent / "outputs").exists()
