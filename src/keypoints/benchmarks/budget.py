"""The default pipeline's time budget, stage by stage, against dlib's whole time in the same run:
`python scripts/benchmark_speed.py parts=[budget]`.

For each set of photos (decoded beforehand: decoding is not timed) and each of `repeats` passes,
the default Detector (the CLIs' default: keypoints.inference.config) goes
over every photo with a StageClock on it, then dlib over the same photos, then MediaPipe's face mesh
(in its own process and environment: keypoints.benchmarks.peers.MediaPipePeer); the passes
alternate, so all see the same load. Figures are in ms a photo: ours from the pass with the median
whole time (its stages, and "Python glue": the whole minus the timed stages), the peers' the
median of their passes.
"""

import os
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from keypoints.benchmarks.peers import DlibPeer, MediaPipePeer
from keypoints.detect import load_detector
from keypoints.inference.cpu import vector_extensions
from keypoints.inference.detector import StageClock, untimed
from keypoints.core.errors import KeypointsError
from keypoints.core.io import read_image
from keypoints.inference.runner import folder_files
from keypoints.core import tables

# the pipeline's stages in the order they run; "network, pass N" as the Detector names them
STAGES = ("face stage", "first frame", "crop", "network, pass 1", "map back", "re-frame", "network, pass 2", "pose")


def set_files(folder, limit: int | None) -> list[Path]:
    """The first `limit` photos of a folder, sorted by name."""
    folder = Path(folder)
    files = folder_files(folder)[:limit] if folder.is_dir() else []
    if not files:
        raise KeypointsError(f"{folder}: no photos to time (budget.sets.<name>=a folder of images)")
    return files


def read_set(folder, limit: int | None) -> list[np.ndarray]:
    """The first `limit` photos of a folder (sorted by name), decoded upright as the CLIs read them."""
    return [read_image(p) for p in set_files(folder, limit)]


def seconds_each(fn, photos: list) -> tuple[float, int]:
    """Seconds for one pass of `fn` over the photos, and the faces it found."""
    start, faces = time.perf_counter(), 0
    for photo in photos:
        faces += len(fn(photo))
    return time.perf_counter() - start, faces


def seconds_batched(detector, photos: list, batch: int) -> float:
    """Seconds for one pass over the photos in batches of `batch` (Detector.detect_many: what a folder run does)."""
    start = time.perf_counter()
    for i in range(0, len(photos), batch):
        detector.detect_many(photos[i:i + batch])
    return time.perf_counter() - start


def budget_set(detector, peer, photos: list, repeats: int, batch: int = 16, mediapipe: MediaPipePeer | None = None) -> dict:
    """One photo set: per stage, the whole (photo by photo, and in batches of `batch` photos as a
    folder run goes), dlib's whole and MediaPipe's, ms a photo (medians over `repeats` passes)."""
    detector(photos[0])  # warm-up: first-call allocations, ORT's kernel choice
    if peer is not None:
        peer(photos[0])
    passes = []
    for _ in range(repeats):
        detector.clock = clock = StageClock()
        whole, faces = seconds_each(detector, photos)
        dlib, dlib_faces = seconds_each(peer, photos) if peer is not None else (float("nan"), 0)
        mesh, mesh_faces = mediapipe.one_pass() if mediapipe is not None else (float("nan"), 0)
        detector.clock = untimed
        batched = seconds_batched(detector, photos, batch)
        passes.append({"stages": dict(clock.seconds), "whole": whole, "dlib": dlib, "faces": faces, "dlib_faces": dlib_faces,
                       "mediapipe": mesh, "mediapipe_faces": mesh_faces, "batched": batched})
    n, ms = len(photos), lambda seconds: 1000 * seconds / len(photos)  # noqa: E731
    # the stages of the pass whose whole is the median one, so that they and the glue add up to it
    middle = sorted(passes, key=lambda p: p["whole"])[len(passes) // 2]
    stages = {s: ms(middle["stages"][s]) for s in _stage_names([middle])}
    whole, dlib = ms(middle["whole"]), ms(statistics.median(p["dlib"] for p in passes))
    batched, mesh = ms(statistics.median(p["batched"] for p in passes)), ms(statistics.median(p["mediapipe"] for p in passes))
    return {"photos": n, "faces": middle["faces"], "dlib_faces": passes[0]["dlib_faces"], "stages_ms": stages,
            "glue_ms": whole - sum(stages.values()), "whole_ms": whole, "dlib_ms": dlib, "ratio": whole / dlib,
            "mediapipe_ms": mesh, "mediapipe_faces": passes[0]["mediapipe_faces"], "ratio_mediapipe": whole / mesh,
            "batched_ms": batched, "batch": batch, "passes": passes}


def _stage_names(passes: list) -> list[str]:
    seen = {s for p in passes for s in p["stages"]}
    return [s for s in STAGES if s in seen] + sorted(seen - set(STAGES))


def measure(cfg) -> dict:
    """Every set of cfg.budget.sets, the default detector and dlib (cfg.dlib) side by side."""
    detector = load_detector(cfg, cfg.get("ckpt_path"))
    try:
        peer = DlibPeer(**cfg.dlib) if cfg.peers else None
    except KeypointsError as e:
        print(f"note: dlib skipped: {e}")
        peer = None
    sets, mesh = {}, cfg.budget.get("mediapipe")
    for name, folder in cfg.budget.sets.items():
        files = set_files(folder, cfg.budget.limit)
        photos = [read_image(p) for p in files]
        mediapipe = None
        if mesh:
            try:
                mediapipe = MediaPipePeer(mesh.python, mesh.script, files, Path(cfg.paths.output_dir) / f"{name}_photos.txt")
            except KeypointsError as e:
                print(f"note: MediaPipe skipped: {e}")
        try:
            sets[name] = {"folder": str(folder), **budget_set(detector, peer, photos, cfg.budget.repeats, cfg.batch_photos, mediapipe)}
        finally:
            if mediapipe is not None:
                mediapipe.close()
        print(f"budget: {name} done ({times(sets[name]['ratio'])} dlib, {times(sets[name]['ratio_mediapipe'])} MediaPipe)", flush=True)
    machine = {"cpu": tables.cpu_name(), "cpu_flags": vector_extensions(), "cpu_count": os.cpu_count(),
               "torch_threads": torch.get_num_threads(), "opencv_threads": cv2.getNumThreads(),
               "load_average": os.getloadavg()}
    setup = {"backend": cfg.backend, "refine": cfg.detector.refine, "refine_min_move": cfg.detector.get("refine_min_move", 0.0),
             "ort_threads": cfg.get("ort_threads"), "workers": detector.workers, "face_stage": type(detector.faces).__name__, "max_side": getattr(detector.faces, "max_side", None),
             "scale": getattr(detector.faces, "scale", 1.0),
             "face_runtime": getattr(detector.faces, "runtime", "opencv"),  # Haar: OpenCV
             "repeats": cfg.budget.repeats, "limit": cfg.budget.limit, "dlib": dict(cfg.dlib)}
    return {"machine": machine, "setup": setup, "sets": sets}


def times(ratio: float) -> str:
    """A ratio as `0.42x`, or `—` for a peer that was skipped (not installed: its time is NaN)."""
    return "—" if ratio != ratio else f"{ratio:.2f}x"


def markdown(result: dict) -> str:
    """One table: a row per stage, a column per photo set; then the whole, dlib's and the ratio."""
    m, s, sets = result["machine"], result["setup"], result["sets"]
    names = list(sets)
    stages = [st for st in STAGES if any(st in r["stages_ms"] for r in sets.values())]
    stages += sorted({st for r in sets.values() for st in r["stages_ms"]} - set(stages))
    cell = lambda v: "—" if v is None or v != v else f"{v:.2f}"  # noqa: E731

    methods = (("whole_ms", "faces"), ("dlib_ms", "dlib_faces"), ("mediapipe_ms", "mediapipe_faces"))  # ours, the peers
    found = lambda r: " / ".join("—" if cell(r.get(ms)) == "—" else str(r.get(faces, 0)) for ms, faces in methods)  # noqa: E731

    rows = [[f"{st}", *[cell(sets[n]["stages_ms"].get(st)) for n in names]] for st in stages]
    rows += [["Python glue (whole − stages)", *[cell(sets[n]["glue_ms"]) for n in names]],
             ["**whole pipeline**", *[f"**{cell(sets[n]['whole_ms'])}**" for n in names]],
             [f"whole, in batches of {sets[names[0]]['batch']} photos (a folder run's detect_many)",
              *[cell(sets[n]["batched_ms"]) for n in names]],
             ["dlib HOG + 68-point predictor, whole", *[cell(sets[n]["dlib_ms"]) for n in names]],
             ["**ratio to dlib**", *[f"**{times(sets[n]['ratio'])}**" for n in names]],
             ["MediaPipe face mesh (static_image_mode, 5 faces), whole", *[cell(sets[n].get("mediapipe_ms")) for n in names]],
             ["**ratio to MediaPipe**", *[f"**{times(sets[n].get('ratio_mediapipe', float('nan')))}**" for n in names]],
             ["faces found (ours / dlib / MediaPipe)", *[found(sets[n]) for n in names]]]
    header = ["ms a photo", *[f"{n} ({sets[n]['photos']} photos)" for n in names]]
    load = ", ".join(f"{v:.1f}" for v in m["load_average"])
    intro = (f"{m['cpu']} ({m['cpu_flags']}), {m['cpu_count']} CPUs; torch on {m['torch_threads']} threads, OpenCV on "
             f"{m['opencv_threads']}; load average at the end {load}. "
             f"Default pipeline: backend={s['backend']}, {s['face_stage']} (max_side {s['max_side']}, scale {s.get('scale', 1.0)}, on {s['face_runtime']}), refine={s['refine']} "
             f"where the frame moves > {s['refine_min_move']}, ONNX Runtime on {_threads(s)}. Medians of "
             f"{s['repeats']} alternating passes, photos decoded beforehand; batches dealt to {s.get('workers', 1)} worker thread(s).")
    return intro + "\n\n" + tables.markdown(header, rows) + "\n"


def _threads(setup: dict) -> str:
    """What ort_threads gave each network, as the Detector decides it (keypoints.inference.config)."""
    if setup["ort_threads"] is not None:
        return f"{setup['ort_threads']} thread(s) for both networks"
    return f"1 thread for YuNet; the keypoint network on {setup.get('workers', 1)} photo by photo, 1 in each worker"
