"""Measurements behind docs/RESULTS.md: accuracy side by side on any labelled folder (accuracy.py),
the dlib peer (peers.py), inference speed (speed.py), training throughput (throughput.py), and
video smoothing and tracking (video.py)."""

from keypoints.core.checks import number, optional, whole

RULES = {  # the benchmark command and scripts/benchmark_*.py
    "limit": optional(whole(1)),
    "skip": whole(0),
    "warmup": whole(0),
    "repeats": whole(1),
    "batch": whole(1),
    "batch_photos": whole(1),
    "seed": optional(whole(0)),
    # scripts/benchmark_video.py
    "clip.width": whole(32),
    "clip.height": whole(32),
    "clip.fps": number(0.0, inclusive=False),
    "clip.frames": whole(2),
    "clip.noise_std": number(0.0),
    "clip.slide_px": number(0.0),
    "clip.skip": whole(0),
}
