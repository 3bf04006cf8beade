"""Face-framed crops: the square a face-crop model sees, from the keypoints (training) or from a
detector's estimate of them (inference), with the jitter that makes the two agree.

The frame is `scale` times the longer side of the keypoints' bounding box, centred on that box.
During training it is jittered in scale, position and rotation, and mirrored half the time, so the
model learns to cope with where a face detector's box really puts the face.
"""

import numpy as np

from keypoints.core import geometry


def keypoint_box(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre and longer side of the (68, 2) keypoints' bounding box."""
    low, high = points.min(axis=0), points.max(axis=0)
    return (low + high) / 2.0, float((high - low).max())


class FaceFrame:
    def __init__(self, size: int, scale: float = 1.35, jitter_scale: float = 0.0, jitter_shift: float = 0.0,
                 rotate: float = 0.0, flip: float = 0.0):
        """`jitter_scale`: the side varies by a factor up to exp(+-jitter_scale); `jitter_shift`: the
        centre moves up to this share of the keypoint box side in x and y; `rotate`: degrees, +-;
        `flip`: the probability of a mirror image. All zero: the deterministic eval frame."""
        self.size, self.scale = size, scale
        self.jitter_scale, self.jitter_shift, self.rotate, self.flip = jitter_scale, jitter_shift, rotate, flip
        self.rng = np.random.default_rng()

    @property
    def random(self) -> bool:
        return any((self.jitter_scale, self.jitter_shift, self.rotate, self.flip))

    def set_random_seed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def __call__(self, points: np.ndarray, roll: float = 0.0) -> np.ndarray:
        """(68, 2) keypoints in original pixels -> the 2x3 affine onto the `size` x `size` input.
        `roll` (degrees, as landmarks.roll measures it): the frame is turned by it, so the face
        stands upright in the input, and framed on the keypoints' box in that upright frame."""
        if roll:
            turn = geometry.rotation(roll)
            centre, side = keypoint_box(points @ turn)  # the points turned upright
            centre = turn @ centre  # that box's centre, back in the photo
        else:
            centre, side = keypoint_box(points)
        angle, mirror = roll, False
        if self.random:
            u = self.rng.uniform(-1.0, 1.0, size=4)
            centre = centre + u[:2] * self.jitter_shift * side
            side = side * np.exp(u[2] * self.jitter_scale)
            angle += u[3] * self.rotate
            mirror = bool(self.rng.random() < self.flip)
        return geometry.square_to_input(centre, self.scale * side, self.size, angle, mirror)
