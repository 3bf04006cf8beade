"""The One Euro filter (Casiez, Roussel and Vogel, CHI 2012) on keypoints: a low-pass filter whose
cut-off frequency rises with speed, so a still face stops jittering and a moving one does not lag.

Each step, for every coordinate, with the time `dt` since the face's last frame:

    alpha(f) = 1 / (1 + 1 / (2 pi f dt))                 # the smoothing factor of cut-off f
    speed    = lowpass(|x - x_last| / dt, d_cutoff)      # a point's speed, itself smoothed
    x_out    = lowpass(x, min_cutoff + beta * speed)

Speeds are in face sizes a second (a face's keypoint-box side), so the knobs mean the same for a
face of 50 or 500 pixels. Driven by timestamps, not frame counts: a webcam that drops frames is
filtered by the time that passed. All faces of a frame go through in one array operation.
"""

import numpy as np


class OneEuroFilter:
    """`filter(points, t, keys, sizes)`: (F, 68, 2) keypoints of F faces at time `t` (seconds), each
    face's state under its key (a track id) -> the smoothed (F, 68, 2). A new key starts unfiltered."""

    def __init__(self, min_cutoff: float, beta: float, d_cutoff: float):
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.state: dict = {}  # key -> (time, smoothed points, smoothed speed per point)

    def __call__(self, points: np.ndarray, t: float, keys: list, sizes: np.ndarray) -> np.ndarray:
        points = np.asarray(points, np.float64)
        known = [i for i, k in enumerate(keys) if k in self.state]
        out, speeds = points.copy(), np.zeros(points.shape[:2])
        if known:
            last_t, last, last_speed = (np.stack(v) for v in zip(*(self.state[keys[i]] for i in known)))
            # a repeated or backward timestamp (a webcam's clock) counts as a millisecond
            dt = np.maximum(t - last_t, 1e-3)[:, None]
            x = points[known]
            speed = np.linalg.norm(x - last, axis=2) / dt / np.asarray(sizes, np.float64)[known, None]
            speeds[known] = last_speed + _alpha(self.d_cutoff, dt) * (speed - last_speed)
            out[known] = last + _alpha(self.min_cutoff + self.beta * speeds[known], dt)[..., None] * (x - last)
        for i, k in enumerate(keys):
            self.state[k] = (t, out[i], speeds[i])
        return out.astype(np.float32)

    def keep(self, keys) -> None:
        """Forget every face but these (tracks that ended)."""
        keys = set(keys)
        self.state = {k: v for k, v in self.state.items() if k in keys}


def _alpha(cutoff, dt):
    """The exponential smoothing factor of a first-order low-pass with this cut-off (Hz) over `dt` seconds."""
    return 1.0 / (1.0 + 1.0 / (2.0 * np.pi * cutoff * dt))
