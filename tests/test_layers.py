"""The house is checked, not hoped for: import-linter's contracts (pyproject.toml, [tool.importlinter])
hold, they break when the inference core imports a tool, and imports sit at the top of modules."""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

from importlinter.cli import lint_imports

from conftest import REPO

SRC = REPO / "src" / "keypoints"
# Imports that may stay inside a function: optional dependencies (pyproject's extras), loaded only by
# the feature that needs them, so a base install imports without them.
OPTIONAL = {"onnx", "onnxruntime", "onnxscript", "dlib", "uvicorn",
            # the `train` extra: keypoints.Detector loads a checkpoint's torch side only when given one
            "torch", "keypoints.training.checkpoints", "keypoints.training.predictors",
            "matplotlib",
            "ray", "pyarrow", "keypoints.scale"}  # the `scale` extra: engine=ray  # the benchmark's plot, drawn when installed (the lean install has it not)
# keypoints/__init__.py: `keypoints.Detector` is resolved on first use (PEP 562), so `import keypoints.core.errors`
# and every other submodule do not load torch and OpenCV through the package's __init__.
LAZY_ATTRIBUTES = {SRC / "__init__.py"}


def test_the_contracts_are_kept():
    assert lint_imports(config_filename=str(REPO / "pyproject.toml"), no_cache=True, no_logo=True) == 0


def test_the_contracts_break_when_the_core_imports_a_tool_or_lightning(tmp_path):
    """A copy of the package in which core modules import each tool (and Lightning): every one is reported."""
    copy = tmp_path / "keypoints"
    shutil.copytree(SRC, copy, ignore=shutil.ignore_patterns("*.ckpt", "*.onnx", "__pycache__"))
    (copy / "teachers").mkdir(exist_ok=True)
    (copy / "teachers" / "__init__.py").touch()
    breaches = {"inference/video/tracking.py": "keypoints.detect", "inference/runner.py": "keypoints.benchmarks",
                "core/io.py": "keypoints.teachers", "core/geometry.py": "keypoints.inference",
                "training/checkpoints.py": "keypoints.web", "inference/framing.py": "keypoints.inference.runner",
                "inference/faces/yunet.py": "lightning", "inference/detector.py": "torch",
                "inference/pipeline.py": "albumentations"}
    for module, imported in breaches.items():
        with open(copy / module, "a") as f:
            f.write(f"\nimport {imported}  # the breach under test\n")
    proc = subprocess.run([shutil.which("lint-imports", path=os.path.dirname(sys.executable)), "--no-cache",
                           "--config", str(REPO / "pyproject.toml")],
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)}, capture_output=True, text=True)
    assert proc.returncode == 1, proc.stdout
    assert "0 kept, 4 broken" in proc.stdout, proc.stdout
    for module, imported in breaches.items():
        importer = "keypoints." + module.removesuffix(".py").replace("/", ".")
        assert f"{importer} -> {imported}" in proc.stdout, (importer, imported, proc.stdout)


def _optional(name: str) -> bool:
    """`name` (a module, or module.attribute) is an optional dependency or inside one."""
    return any(name == o or name.startswith(o + ".") for o in OPTIONAL)


def _imports_inside_functions(path: Path):
    """(line, dotted name) of every import inside a function or method of `path`."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import):
                    yield from ((inner.lineno, alias.name) for alias in inner.names)
                elif isinstance(inner, ast.ImportFrom):
                    module = inner.module or ""
                    yield from ((inner.lineno, f"{module}.{alias.name}") for alias in inner.names)


def test_imports_sit_at_the_top_except_optional_dependencies():
    found = [f"{path.relative_to(REPO)}:{line}: import {name}"
             for path in sorted(SRC.rglob("*.py")) if path not in LAZY_ATTRIBUTES
             for line, name in _imports_inside_functions(path) if not _optional(name)]
    assert not found, "imports inside functions (move them to the top):\n" + "\n".join(found)


def test_loading_models_loads_no_lightning(tiny_face_checkpoint):
    """The shipped model and a checkpoint written by this version (its data config names the training
    data module) load, and run, without Lightning: a model file's targets are checked, not imported wholesale."""
    code = ("import sys, numpy as np; from keypoints import Detector; from keypoints.training.checkpoints import load_model; "
            f"load_model({str(tiny_face_checkpoint)!r}); Detector()(np.zeros((64, 64, 3), np.uint8)); "
            "assert 'lightning' not in sys.modules, 'lightning loaded'")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=REPO)
