"""`backend=auto` on a CPU: the shipped model's int8 file or its float file, whichever this CPU runs faster
with the same points, measured on the first load and remembered for this CPU and ONNX Runtime version.

    choice = shipped_file()   # Choice(path=.../face_mobile.int8.onnx, why="int8: 0.84 ms, float: 1.92 ms a batch ...")

Which file is faster depends on the CPU's int8 kernels (VNNI, AVX2 only, SSE4 under emulation) and on the
ONNX Runtime build, which no list of CPU flags predicts; so both files run on a few face crops (PROBE_FACES:
scripts/make_probe_faces.py) on one thread, and the int8 file is kept when it is faster and its points stay
within AGREE of the float file's. The result lives in the user's cache (cache_file()), keyed by the CPU's
model name and vector extensions (as its CPUID tells them: right under an emulator too), ONNX Runtime's
version and both files' size and time: the next run reads it and measures nothing. A cache that cannot be
read or written is measured around, never a failure.
"""

import hashlib
import json
import os
import platform
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from keypoints.core import outputs
from keypoints.core.errors import KeypointsError
from keypoints.core.tables import cpu_name
from keypoints.inference.cpu import cpu_features
from keypoints.inference.model_files import DEFAULT_INT8_MODEL, DEFAULT_ONNX_MODEL, WEIGHTS
from keypoints.inference.onnx_runtime import OnnxPredictor
from keypoints.inference.pipeline import eval_pipeline

PROBE_FACES = WEIGHTS / "probe_faces.png"  # face crops at the shipped model's input size, side by side
AGREE = 0.02  # the int8 file's points may stray this far from the float file's: mean distance / eye-corner distance
RUNS = 7  # timed batches of each file, after one untimed: the median counts


def cache_file() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "keypoints" / "backend.json"


@dataclass(frozen=True)
class Choice:
    path: Path  # the file `auto` runs
    why: str  # the measurement behind it, as `keypoints benchmark` and the server's /api/info say it


def machine_key(int8: Path = DEFAULT_INT8_MODEL, float_: Path = DEFAULT_ONNX_MODEL) -> str:
    """What the choice depends on: this CPU, this ONNX Runtime, these two files."""
    made = [cpu_name(), sorted(cpu_features()), platform.machine(), ort.__version__,
            *(outputs.file_identity(p) for p in (int8, float_))]
    return hashlib.sha256(json.dumps(made, default=str).encode()).hexdigest()[:16]


def probe_inputs(size: int, channels: int, to_input) -> np.ndarray:
    """PROBE_FACES as a batch for a model of this input size and channels, through its eval pipeline."""
    strip = cv2.imread(str(PROBE_FACES), cv2.IMREAD_GRAYSCALE) if PROBE_FACES.is_file() else None  # no OpenCV warning
    if strip is None or strip.shape[1] % strip.shape[0]:
        raise KeypointsError(f"{PROBE_FACES}: not a strip of square face crops (python scripts/make_probe_faces.py)")
    side = strip.shape[0]
    crops = [cv2.resize(strip[:, i:i + side], (size, size), interpolation=cv2.INTER_LINEAR) for i in range(0, strip.shape[1], side)]
    crops = [cv2.cvtColor(c, cv2.COLOR_GRAY2BGR) if channels == 3 else c for c in crops]
    return np.stack([np.atleast_3d(to_input(c)).transpose(2, 0, 1) for c in crops]).astype(np.float32)


def measure(int8: Path, float_: Path, timer=time.perf_counter) -> dict:
    """Both files on the probe crops, one thread each: ms a batch (median of RUNS) and how far apart their points are."""
    files = {"float": OnnxPredictor.from_file(float_, threads=1)}
    try:
        files["int8"] = OnnxPredictor.from_file(int8, threads=1)
    except KeypointsError as e:  # an int8 file whose weights saturate on this CPU (keypoints.inference.cpu)
        return {"refused": str(e)}
    meta = files["float"].metadata
    batch = probe_inputs(meta["input_size"], meta["channels"], eval_pipeline(meta["data_config"], float_)[0])
    points, ms = {}, {}
    for name, predictor in files.items():
        points[name] = predictor(batch)  # untimed: first-call allocations
        times = []
        for _ in range(RUNS):
            start = timer()
            predictor(batch)
            times.append(timer() - start)
        ms[name] = 1000 * float(np.median(times))
    eyes = np.linalg.norm(points["float"][:, 36] - points["float"][:, 45], axis=1)
    apart = float(np.mean(np.linalg.norm(points["int8"] - points["float"], axis=2).mean(axis=1) / eyes))
    return {"int8_ms": ms["int8"], "float_ms": ms["float"], "apart": apart, "crops": len(batch)}


def decide(measured: dict) -> tuple[str, str]:
    """("int8" or "float", why) from a measurement."""
    if "refused" in measured:
        return "float", f"the int8 file does not run right here: {measured['refused']}"
    times = f"int8 {measured['int8_ms']:.2f} ms, float {measured['float_ms']:.2f} ms a batch of {measured['crops']} crops"
    if measured["apart"] > AGREE:
        return "float", f"{times}; int8's points {100 * measured['apart']:.1f}% of the eye distance from float's (over {100 * AGREE:g}%)"
    if measured["int8_ms"] < measured["float_ms"]:
        return "int8", f"{times}; points {100 * measured['apart']:.2f}% of the eye distance apart"
    return "float", f"{times}: float is faster here"


@cache
def shipped_file(int8: Path = DEFAULT_INT8_MODEL, float_: Path = DEFAULT_ONNX_MODEL) -> Choice:
    """The shipped model's file for `auto` on this CPU: from the cache, or measured now and remembered."""
    key, path = machine_key(int8, float_), cache_file()
    cached = _cached(_read(path).get(key), int8, float_)
    if cached is not None:
        return cached
    try:
        which, why = decide(measure(int8, float_))
    except KeypointsError as e:  # no probe crops (a broken install): int8, the faster on every CPU measured so far; not cached
        return Choice(int8, f"not measured ({e}): the int8 file")
    known = _read(path)  # read again: another process may have measured meanwhile, and the first choice written stands
    cached = _cached(known.get(key), int8, float_)
    if cached is not None:
        return cached
    known[key] = {"file": which, "why": why, "cpu": cpu_name(), "onnxruntime": ort.__version__, "when": time.strftime("%Y-%m-%d")}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        outputs.write_json(path, known, indent=1)
    except (OSError, KeypointsError):
        pass  # a read-only home: measured again next time, which costs a fraction of a second
    return Choice(int8 if which == "int8" else float_, f"{why} (measured now)")


def _cached(entry, int8: Path, float_: Path) -> Choice | None:
    """The Choice a cache entry holds, or None for none or a malformed one."""
    if not isinstance(entry, dict) or entry.get("file") not in ("int8", "float"):
        return None
    return Choice(int8 if entry["file"] == "int8" else float_, f"{entry.get('why', '')} (measured {entry.get('when', '?')}, cached)")


def _read(path: Path) -> dict:
    """The cache's entries; {} for a missing, unreadable, oversized or malformed file (it is rewritten)."""
    try:
        if not path.is_file() or path.stat().st_size > 1_000_000:  # a FIFO or device would block a read
            return {}
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return known if isinstance(known, dict) else {}
