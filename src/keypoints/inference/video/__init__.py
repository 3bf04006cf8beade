"""Faces in motion: tracks that keep their id from frame to frame (tracking.py) and keypoints
smoothed over time (smoothing.py), for videos, webcams and streams.

    tracker = load_tracker(keypoints.Detector(), detect_every=3)   # knobs: keypoints/conf/video/default.yaml
    for t, frame in frames:                                        # t: the frame's time in seconds
        for face in tracker(frame, t): print(face.track, face.box, face.pose)
"""

from contextlib import contextmanager
from importlib import resources

import sys
from omegaconf import OmegaConf

from keypoints.core.checks import BOOLEAN, check_config, is_number, number, optional, whole
from keypoints.core.errors import KeypointsError
from keypoints.inference.video.tracking import Tracker

RULES = {  # the `video` group, keypoints/conf/video/default.yaml
    "video.detect_every": whole(1),
    "video.max_misses": whole(0),
    "video.match_iou": ((lambda v: is_number(v) and 0 < v <= 1), "an IoU in (0, 1]"),
    "video.max_faces": whole(1),
    "video.max_frames": optional(whole(1)),
    "video.threads": optional(whole(1)),
    "video.smoothing.enabled": BOOLEAN,
    "video.smoothing.min_cutoff": number(0.0, inclusive=False),
    "video.smoothing.beta": number(0.0),
    "video.smoothing.d_cutoff": number(0.0, inclusive=False),
}


def video_config(**overrides) -> dict:
    """The packaged defaults (the `video` config group) with `overrides`, each knob checked: a wrong
    or unknown one is one line naming it (video.detect_every=0: must be ...)."""
    defaults = OmegaConf.load(resources.files("keypoints.conf") / "video" / "default.yaml")
    overrides = OmegaConf.to_container(OmegaConf.create(dict(overrides)))  # a Hydra node or plain values
    _known(defaults, overrides, "video")
    cfg = OmegaConf.merge(defaults, overrides)
    check_config(OmegaConf.create({"video": cfg}), RULES)
    return OmegaConf.to_container(cfg)


def load_tracker(detector, **overrides):
    """A Tracker for `detector` with the packaged knobs, changed by `overrides` (detect_every=3,
    smoothing={"enabled": False}, ...)."""
    knobs = video_config(**overrides)
    for key in ("max_frames", "threads"):  # the runner's, not the tracker's
        knobs.pop(key)
    return Tracker(detector, **knobs)


@contextmanager
def torch_threads(n: int | None):
    """torch's intra-op threads set to `n` for the block, then put back (None: left as they are).
    The runner and the video benchmark run a video under the `video.threads` knob. Only when torch
    runs the model (a checkpoint of one's own): otherwise it is not loaded, and nothing is set."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _known(defaults, overrides: dict, prefix: str) -> None:
    for key, value in overrides.items():
        if key not in defaults:
            raise KeypointsError(f"{prefix}.{key}: unknown knob (one of {', '.join(defaults)})")
        if isinstance(value, dict) and OmegaConf.is_config(defaults[key]):
            _known(defaults[key], value, f"{prefix}.{key}")
