"""The same answers on another CPU: the whole pipeline under Debian's qemu-user emulating an AVX2-only CPU
(Haswell: no AVX-512, no VNNI; ONNX Runtime takes its AVX2 kernels and `auto` measures its own choice) against
the native run, on a dozen 300-W dev photos. Slow: emulation runs the code some 20x slower. Older CPUs cannot be
checked this way: under qemu's Nehalem (SSE4.2) numpy 2.4's wheel stops at its import, under its Sandy Bridge
(AVX, no AVX2) at the first matrix product, both on an illegal instruction."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import SHARED
from keypoints.inference.cpu import is_x86

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not is_x86() or shutil.which("qemu-x86_64") is None,
                                 reason="needs an x86 machine and qemu-user (apt-get install qemu-user)")]
W300 = SHARED / "data" / "300w"
PHOTOS = 12
RUN = """
import json, sys
import numpy as np
import keypoints
from keypoints.benchmarks.accuracy import load_labelled, match, nme, ours
from keypoints.inference.backends import explain
from keypoints.inference.cpu import vector_extensions
root, backend = sys.argv[1], sys.argv[2]
images, truths = load_labelled(root + "/dev_keypoints.csv", root + "/dev", limit=int(sys.argv[3]))
detector = keypoints.Detector(backend=backend)
points = [match(ours(detector)(image), truth) for image, truth in zip(images, truths)]
print(json.dumps({"cpu": vector_extensions(), "runs": explain(backend, "cpu"), "file": detector.predictor.path.name,
                  "points": [None if p is None else np.asarray(p).tolist() for p in points],
                  "nme": [None if p is None else nme(p, t) for p, t in zip(points, truths)]}))
"""


def run(prefix: list[str], backend: str, cache) -> dict:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}  # each CPU measures auto afresh
    proc = subprocess.run([*prefix, sys.executable, "-c", RUN, str(W300), backend, str(PHOTOS)], capture_output=True,
                          text=True, timeout=1800, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def test_an_emulated_avx2_cpu_chooses_a_file_by_itself_and_gives_the_native_points(tmp_path):
    emulated = run(["qemu-x86_64", "-cpu", "Haswell-v4"], "auto", tmp_path / "haswell")
    assert emulated["cpu"] == "AVX2-only" and ("auto: int8" in emulated["runs"] or "auto: float" in emulated["runs"])
    assert "(measured now)" in emulated["runs"]  # not the host's choice: its CPUID is another CPU's
    backend = "onnxruntime-int8" if emulated["file"].endswith(".int8.onnx") else "onnxruntime"
    native = run([], backend, tmp_path / "native")  # the same file on this CPU
    assert None not in emulated["nme"] and None not in native["nme"]
    assert abs(np.mean(emulated["nme"]) - np.mean(native["nme"])) <= 0.0005  # 0.05 point
    assert np.abs(np.subtract(emulated["points"], native["points"])).mean() < 0.5  # pixels
