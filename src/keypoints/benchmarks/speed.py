"""Inference speed: the keypoint stage per checkpoint and backend, whole photos through the Detector,
the face stage alone, and dlib's HOG + 68-point shape predictor as a peer.

Every figure is the median of repeated timed runs after untimed warm-up runs, on inputs already in
memory: decoding a JPEG is not what is measured.
"""

import os
import statistics
import time
from importlib import metadata
from pathlib import Path

import cv2
import numpy as np
import torch

from keypoints.detect import Detector, load_detector
from keypoints.core.errors import KeypointsError
from keypoints.core.io import read_image
from keypoints.benchmarks.peers import DlibPeer
from keypoints.inference.runner import folder_files
from keypoints.core import tables

COLUMNS = ("method", "backend", "input", "keypoints, batch 1 (ms/face)", "keypoints, batch {batch} (faces/s)",
           "photos/s", "faces found")


def median_seconds(fn, repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def read_photos(folder) -> list[np.ndarray]:
    folder = Path(folder)
    files = folder_files(folder) if folder.is_dir() else []
    if not files:
        raise KeypointsError(f"{folder}: no photos to time (photos=a folder of images)")
    return [read_image(p) for p in files]


def photos_per_second(per_photo, photos: list, cfg) -> tuple[float, int]:
    """Photos/s over passes through all photos, and the faces one pass finds."""
    seconds = median_seconds(lambda: [per_photo(p) for p in photos], cfg.photo_repeats, cfg.photo_warmup)
    return len(photos) / seconds, sum(len(per_photo(p)) for p in photos)


def model_row(detector: Detector, label: str, backend: str, photos: list, cfg) -> dict:
    """The keypoint stage alone on random inputs (batch 1 and cfg.batch), then whole photos."""
    size, channels = detector.size, detector.channels
    rng = np.random.default_rng(0)
    one, many = (rng.random((n, channels, size, size), dtype=np.float32) for n in (1, cfg.batch))
    latency = median_seconds(lambda: detector.predictor(one), cfg.repeats, cfg.warmup)
    batched = median_seconds(lambda: detector.predictor(many), cfg.repeats, cfg.warmup)
    photos_s, faces = photos_per_second(detector, photos, cfg)
    return {"method": label, "backend": backend, "input": f"{channels}x{size}x{size}", "latency_ms": 1000 * latency,
            "faces_per_s": cfg.batch / batched, "photos_per_s": photos_s, "faces": faces}


def dlib_row(photos: list, cfg) -> tuple[dict | None, str | None]:
    """dlib's HOG detector and 68-point shape predictor on a downscaled gray copy (cfg.dlib.max_side);
    (None, why) when the `peers` extra is not installed."""
    try:
        peer = DlibPeer(**cfg.dlib)
    except KeypointsError as e:
        return None, f"dlib skipped: {e}"
    photos_s, faces = photos_per_second(peer, photos, cfg)
    # per-face latency of the shape predictor alone, on the faces HOG finds in the photos
    found = [(gray, list(peer.hog(gray, peer.upsample))) for gray, _ in map(peer.gray, photos)]
    seconds = median_seconds(lambda: [peer.shapes(g, b) for g, boxes in found for b in boxes], cfg.repeats, cfg.warmup)
    return {"method": "dlib HOG + 68-point shape predictor", "backend": f"dlib {peer.version}", "input": "gray box",
            "latency_ms": 1000 * seconds / max(faces, 1), "faces_per_s": None, "photos_per_s": photos_s,
            "faces": faces}, None


def measure(cfg) -> dict:
    """Every checkpoint under every backend, then the face stage alone and the dlib peer."""
    photos = read_photos(cfg.photos)
    rows, notes, detector = [], [], None
    for path in cfg.ckpt_paths:
        exported = path is not None and Path(path).suffix == ".onnx"  # runs under ONNX Runtime as written: one row
        for backend in ["onnxruntime"] if exported else cfg.backends:
            if backend == "onnxruntime-int8" and path is not None:  # a checkpoint: int8 needs calibration photos
                notes.append(f"{path}: no int8 row (export it with quantize=int8 and time that .onnx)")
                continue
            # the CLIs' own way to a Detector, so the timed pipeline is the one detect.py runs
            detector = load_detector(cfg, path, backend)
            source = "shipped default" if path is None else f"{Path(path).parent.parent.name}/{Path(path).name}"
            label = f"{detector.architecture} ({source})"
            rows.append(model_row(detector, label, backend, photos, cfg))
    if detector is not None:
        photos_s, faces = photos_per_second(detector.faces, photos, cfg)
        rows.append({"method": f"face stage alone ({type(detector.faces).__name__})", "backend": f"OpenCV {cv2.__version__}", "input": "",
                     "latency_ms": None, "faces_per_s": None, "photos_per_s": photos_s, "faces": faces})
    if cfg.peers:
        row, note = dlib_row(photos, cfg)
        rows += [row] if row else []
        notes += [note] if note else []
    machine = {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
               "onnxruntime": _version("onnxruntime"), "onnxruntime_threads": cfg.get("ort_threads") or "ORT's default (one per physical core)"}
    setup = {"photos": str(cfg.photos), "n_photos": len(photos), "batch": cfg.batch, "repeats": cfg.repeats,
             "warmup": cfg.warmup, "photo_repeats": cfg.photo_repeats, "device": cfg.device}
    return {"machine": machine, "setup": setup, "rows": rows, "notes": notes}


def markdown(result: dict) -> str:
    m, s = result["machine"], result["setup"]
    lines = [f"{m['cpu_count']} CPUs (os.cpu_count()), torch {m['torch']} on {m['torch_threads']} threads "
             f"(torch.get_num_threads()), onnxruntime {m['onnxruntime']} on {m['onnxruntime_threads']} thread(s) (ort_threads); device {s['device']}.",
             f"Keypoint stage: medians of {s['repeats']} calls after {s['warmup']} warm-up calls on random inputs. "
             f"Photos: {s['n_photos']} from {s['photos']}, decoded beforehand, medians of {s['photo_repeats']} passes; "
             "faces found are per pass.", ""]
    lines.append(tables.markdown([c.format(batch=s["batch"]) for c in COLUMNS], [
        [r["method"], r["backend"], r["input"], _fmt(r["latency_ms"], 2), _fmt(r["faces_per_s"], 0),
         _fmt(r["photos_per_s"], 2), r["faces"]] for r in result["rows"]]))
    return "\n".join(lines + [""] + [f"Note: {n}" for n in result["notes"]]).rstrip() + "\n"


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _fmt(value, digits: int) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"
