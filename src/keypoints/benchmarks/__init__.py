"""Measurements behind docs/RESULTS.md: accuracy side by side on any labelled folder (accuracy.py),
the dlib peer (peers.py), inference speed (speed.py), training throughput (throughput.py), and
video smoothing and tracking (video.py)."""
