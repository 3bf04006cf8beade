"""Does tracking with smoothing hold still, keep up, and run in real time? Two videos are made from
one photo (one face): the still photo with fresh pixel noise on every frame, and the photo sliding
by a few pixels a frame. Both are written as mp4 and read back, then run twice: as photos (the
Detector on every frame, no smoothing) and through the video pipeline (keypoints.inference.video).

- jitter: each keypoint coordinate's std over the noisy still frames, averaged; the pipeline's
  over the photos' (the goal: at most half);
- lag: how far the pipeline's keypoints trail the photos' on the same sliding frame, along the
  motion, in pixels (mean over frames, and the worst frame);
- speed: frames/s of decode + tracking + smoothing + pose over the still video.
The first `skip` frames are left out of jitter and lag: the filter starts from the first frame.
"""

import os
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from keypoints.core import tables
from keypoints.detect import Detector
from keypoints.core.errors import KeypointsError
from keypoints.core.io import read_image
from keypoints.inference.video import load_tracker


def clip_frame(photo: np.ndarray, width: int, height: int) -> np.ndarray:
    """The photo scaled to fit `width` x `height` and centred, edges replicated to fill the rest."""
    scale = min(width / photo.shape[1], height / photo.shape[0])
    affine = np.array([[scale, 0, (width - scale * photo.shape[1]) / 2], [0, scale, (height - scale * photo.shape[0]) / 2]])
    return cv2.warpAffine(photo, affine, (width, height), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


def noisy_still(frame: np.ndarray, n: int, std: float, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.clip(frame + rng.normal(0, std, frame.shape), 0, 255).astype(np.uint8) for _ in range(n)]


def sliding(frame: np.ndarray, n: int, step: float) -> list[np.ndarray]:
    """The frame moved left by `step` pixels a frame, centred on the middle frame."""
    h, w = frame.shape[:2]
    shifts = [(n / 2 - i) * step for i in range(n)]
    return [cv2.warpAffine(frame, np.array([[1.0, 0, dx], [0, 1, 0]]), (w, h), borderMode=cv2.BORDER_REPLICATE) for dx in shifts]


def write_and_read(frames: list[np.ndarray], path: Path, fps: float) -> list[np.ndarray]:
    """The frames through an mp4 file, as a video reader gets them."""
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for frame in frames:
        writer.write(frame)
    writer.release()
    capture, out = cv2.VideoCapture(str(path)), []
    ok, frame = capture.read()
    while ok:
        out.append(frame)
        ok, frame = capture.read()
    capture.release()
    if len(out) != len(frames):
        raise KeypointsError(f"{path}: {len(out)} of {len(frames)} frames read back")
    return out


def as_photos(detector: Detector, frames: list[np.ndarray]) -> np.ndarray:
    """(frames, 68, 2): the largest face of each frame through the Detector alone (NaN if none)."""
    out = np.full((len(frames), 68, 2), np.nan, np.float32)
    for i, frame in enumerate(frames):
        faces = detector(frame)
        if faces:
            out[i] = max(faces, key=lambda f: f.box[2] * f.box[3]).keypoints
    return out


def as_video(detector: Detector, frames: list[np.ndarray], fps: float, knobs: dict) -> np.ndarray:
    """(frames, 68, 2): the longest track through the video pipeline (NaN where it is absent)."""
    tracker = load_tracker(detector, **knobs)
    per_frame = [{f.track: f.keypoints for f in tracker(frame, i / fps)} for i, frame in enumerate(frames)]
    ids = [k for faces in per_frame for k in faces]
    if not ids:
        return np.full((len(frames), 68, 2), np.nan, np.float32)
    longest = max(set(ids), key=ids.count)
    return np.stack([faces.get(longest, np.full((68, 2), np.nan, np.float32)) for faces in per_frame])


def jitter(points: np.ndarray) -> float:
    return float(np.nanmean(np.nanstd(points, axis=0)))


def lag(video: np.ndarray, photos: np.ndarray, direction: np.ndarray) -> tuple[float, float]:
    """Mean and worst per-frame trail of the video's keypoints behind the photos', along `direction`."""
    behind = -((video - photos) @ direction).mean(axis=1)
    return float(np.nanmean(behind)), float(np.nanmax(behind))


def frames_per_second(detector: Detector, path: Path, fps: float, knobs: dict, repeats: int) -> float:
    """Median frames/s of reading `path` and running the video pipeline on every frame."""
    def once() -> float:
        tracker, capture, n = load_tracker(detector, **knobs), cv2.VideoCapture(str(path)), 0
        start = time.perf_counter()
        ok, frame = capture.read()
        while ok:
            tracker(frame, n / fps)
            n += 1
            ok, frame = capture.read()
        capture.release()
        return n / (time.perf_counter() - start)

    once()  # warm-up: allocators, kernel choice
    return statistics.median(once() for _ in range(repeats))


def measure(cfg, detector: Detector, knobs: dict) -> dict:
    clip, out, load = cfg.clip, Path(cfg.output), os.getloadavg()
    out.mkdir(parents=True, exist_ok=True)
    frame = clip_frame(read_image(cfg.photo), clip.width, clip.height)
    if len(detector(frame)) != 1:
        raise KeypointsError(f"{cfg.photo}: {len(detector(frame))} faces found; photo= needs a photo of one face")
    still = write_and_read(noisy_still(frame, clip.frames, clip.noise_std, cfg.seed or 0), out / "still.mp4", clip.fps)
    slide = write_and_read(sliding(frame, clip.frames, clip.slide_px), out / "slide.mp4", clip.fps)
    raw = {**knobs, "smoothing": {**knobs["smoothing"], "enabled": False}}
    s = clip.skip
    still_photos, slide_photos = as_photos(detector, still)[s:], as_photos(detector, slide)[s:]
    left = np.array([-1.0, 0.0])
    result = {
        "cpu": tables.cpu_name(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "load_average": load,
        "jitter_photos_px": jitter(still_photos),
        "jitter_tracked_px": jitter(as_video(detector, still, clip.fps, raw)[s:]),
        "jitter_smoothed_px": jitter(as_video(detector, still, clip.fps, knobs)[s:]),
        "lag_tracked_px": lag(as_video(detector, slide, clip.fps, raw)[s:], slide_photos, left),
        "lag_smoothed_px": lag(as_video(detector, slide, clip.fps, knobs)[s:], slide_photos, left),
        "fps_video": frames_per_second(detector, out / "still.mp4", clip.fps, knobs, cfg.repeats),
        "fps_detect_every_frame": frames_per_second(detector, out / "still.mp4", clip.fps, {**knobs, "detect_every": 1}, cfg.repeats),
        "knobs": knobs,
    }
    result["jitter_ratio"] = result["jitter_smoothed_px"] / result["jitter_photos_px"]
    return result


def markdown(r: dict, cfg) -> str:
    clip, k = cfg.clip, r["knobs"]
    smoothing = k["smoothing"]
    rows = [
        ["jitter, smoothed tracks / photos (still photo, noise std " f"{clip.noise_std:g})", f"{r['jitter_ratio']:.2f}", "<= 0.5"],
        ["jitter px: photos / tracks / smoothed tracks",
         f"{r['jitter_photos_px']:.3f} / {r['jitter_tracked_px']:.3f} / {r['jitter_smoothed_px']:.3f}", ""],
        [f"lag px, sliding {clip.slide_px:g} px a frame: smoothed mean / worst frame",
         f"{r['lag_smoothed_px'][0]:.2f} / {r['lag_smoothed_px'][1]:.2f}", "<= 3"],
        ["lag px, tracks unsmoothed: mean / worst frame", f"{r['lag_tracked_px'][0]:.2f} / {r['lag_tracked_px'][1]:.2f}", ""],
        [f"frames/s, {clip.width}x{clip.height}, one face (detect_every={k['detect_every']})", f"{r['fps_video']:.1f}", ">= 30"],
        ["frames/s, face stage on every frame (detect_every=1)", f"{r['fps_detect_every_frame']:.1f}", ""],
    ]
    load = ", ".join(f"{v:.2f}" for v in r["load_average"])
    return (tables.markdown(["measure", "value", "goal"], rows)
            + f"\n\nOne Euro: min_cutoff {smoothing['min_cutoff']:g} Hz, beta {smoothing['beta']:g}, d_cutoff "
            f"{smoothing['d_cutoff']:g} Hz; {clip.frames} frames at {clip.fps:g} fps from {Path(cfg.photo).name}, "
            f"the first {clip.skip} left out.\nCPU: {r['cpu']}, {r['cores']} cores, torch on {r['torch_threads']} threads; "
            f"load average at the start: {load}.\n")
