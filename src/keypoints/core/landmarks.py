"""The 68-point iBUG / Multi-PIE markup: which index is which (0-based)."""

import numpy as np

LEFT_EYE_OUTER, RIGHT_EYE_OUTER = 36, 45  # the 300-W "inter-ocular" pair that NME divides by

# The markup's point groups, by index: what a teacher may teach is said by group (keypoints.teachers).
GROUPS = {"jaw": list(range(0, 17)), "brows": list(range(17, 27)), "nose": list(range(27, 36)),
          "eyes": list(range(36, 48)), "mouth": list(range(48, 68))}
INNER = list(range(17, 68))  # the 51 points that 2D and 3D-fitted markups agree on



def per_face_nme(pred, target):
    """(B, 68, 2) predictions and targets in the same pixels -> (B,) NME: the mean point-to-point
    error by the outer-eye-corner distance (300-W's "inter-ocular"). NumPy arrays or torch tensors
    alike (arithmetic, sum and mean only): training's metrics and the benchmark share this one."""
    iod = (((target[:, LEFT_EYE_OUTER] - target[:, RIGHT_EYE_OUTER]) ** 2).sum(-1)) ** 0.5
    return ((((pred - target) ** 2).sum(-1)) ** 0.5).mean(1) / iod


def _mirror_pairs() -> list[tuple[int, int]]:
    jaw = [(i, 16 - i) for i in range(8)]
    brows = [(17 + i, 26 - i) for i in range(5)]
    nose = [(31, 35), (32, 34)]
    eyes = [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]
    mouth = [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58), (60, 64), (61, 63), (65, 67)]
    return jaw + brows + nose + eyes + mouth



def _flip_permutation() -> np.ndarray:
    perm = np.arange(68)
    for a, b in _mirror_pairs():
        perm[a], perm[b] = b, a
    return perm


# A mirrored face's point i is the original's point FLIP[i] (left jaw <-> right jaw, ...): a flip must
# move the labels with the pixels, which albumentations' HorizontalFlip does not do.
FLIP = _flip_permutation()



def roll(points: np.ndarray) -> float:
    """The face's roll in degrees from its 68 points: the turn of the line from the eye on the
    photo's left (points 36-41) to the other (42-47); clockwise on screen (y down) is positive."""
    left, right = points[36:42].mean(axis=0), points[42:48].mean(axis=0)
    return float(np.degrees(np.arctan2(right[1] - left[1], right[0] - left[0])))




def nose_offset(points: np.ndarray) -> float:
    """How far the nose tip (point 30) sits beside the middle of the eyes, along the eye line, in eye
    distances: about 0 for a frontal face, past 1 for a profile."""
    return offset_beside_eyes(points[36:42].mean(axis=0), points[42:48].mean(axis=0), points[30])



def offset_beside_eyes(right_eye: np.ndarray, left_eye: np.ndarray, point: np.ndarray) -> float:
    """`point`'s offset from the eyes' middle along the eye line, in eye distances."""
    eyes = left_eye - right_eye
    return float(np.dot(point - (left_eye + right_eye) / 2, eyes)) / max(float(np.dot(eyes, eyes)), 1e-12)
