"""Head pose and the face in 3D from the 68 keypoints: a 3D face model fitted to them.

    fit = fit_head(face.keypoints)   # HeadFit(pose=Pose(yaw=..., pitch=..., roll=...), points=(68, 3)); None if it fails
    face.pose, face.keypoints_3d     # the Detector and the video tracker fit each face this way

Convention of `Pose` (the camera's view; docs/JSON.md): yaw > 0 when the nose turns to the photo's right (the
person looks to their own left), pitch > 0 when the face turns up, roll > 0 when the head tilts clockwise on
screen (as keypoints.core.landmarks.roll). The rotation is R = Rz(roll) Ry(-yaw) Rx(-pitch) in the camera's
axes (x right, y down, z ahead): roll comes last, so turning a photo by an angle changes roll by that angle and
leaves yaw and pitch alone, and a mirror image negates yaw and roll. `Pose.aflw2000()` gives the same rotation
in the convention AFLW2000-3D's labels and the pose networks use.

How: a 68-point 3D face model, a mean face plus 40 shape and 10 expression directions, is fitted to the 51
inner keypoints (brows, nose, eyes, mouth; the jaw is the face's outline, which slides over the head as it
turns, while the model's jaw is a fixed contour) under a scaled orthographic camera (a face is small beside its
distance from the lens: no focal length to guess). The fit alternates two least-squares steps: the camera (the
affine map from the model's points to the keypoints, made a scaled rotation), then the shape and expression (a
ridge pulls them toward the mean face, each direction by its spread over 3DDFA's training faces). `RIDGE` and
`ROUNDS` were chosen on the first half of the labelled wild photos (docs/RESULTS.md, "Head pose and 3D points").

The face model: the Basel Face Model's 68 keypoint vertices with 3DDFA's shape and expression bases, as 3DDFA
and 3DDFA_V2 ship them (MIT: weights/LICENSE-3DDFA, LICENSE-3DDFA_V2), with the spread of each direction from
3DDFA_V2's `param_mean_std_62d_120x120.pkl` (weights/face_model_68.npz: `mean` (68, 3), `basis` (68, 3, 50),
`spread` (50,)). The Basel Face Model itself is for non-commercial research (weights/TERMS.md).
"""

from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

INNER = np.arange(17, 68)  # the points the model is fitted to
RIDGE = 1e7  # how hard the shape is pulled toward the mean face (in units of each direction's spread)
ROUNDS = 3  # camera, then shape: rounds of the two steps (more drift to fit the points' noise: 10 rounds gave 4.09 degrees, 3 gave 3.99)
FLIP = np.diag([1.0, -1.0, -1.0])  # the face model's axes (x right, y up, z toward the viewer) <-> the camera's (y down, z ahead)


@dataclass(frozen=True)
class Pose:
    yaw: float  # degrees; > 0: the nose turns to the photo's right
    pitch: float  # degrees; > 0: the face turns up
    roll: float  # degrees; > 0: the head tilts clockwise on screen

    def to_json(self) -> dict:
        return {"yaw": round(self.yaw, 1), "pitch": round(self.pitch, 1), "roll": round(self.roll, 1)}

    def matrix(self) -> np.ndarray:
        """The rotation (the head's axes -> the camera's) this pose stands for; `euler` inverts it."""
        a, b, c = np.radians([-self.pitch, -self.yaw, self.roll])
        rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
        ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
        rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
        return rz @ ry @ rx

    def aflw2000(self) -> tuple[float, float, float]:
        """(yaw, pitch, roll) in degrees in AFLW2000-3D's convention (3DDFA's; HopeNet, FSA-Net, 6DRepNet and
        SynergyNet report theirs in it): R = Rx(pitch) Ry(yaw) Rz(roll) with face3d's angle2matrix_3ddfa
        matrices, axes x right, y up, z toward the viewer; +yaw turns the face toward the photo's left, +pitch
        lifts the chin, +roll turns it clockwise on screen. The rotation is the same; only the angles differ."""
        r = FLIP @ self.matrix() @ FLIP
        yaw = -np.degrees(np.arcsin(np.clip(r[0, 2], -1.0, 1.0)))
        pitch = np.degrees(np.arctan2(r[1, 2], r[2, 2]))
        roll = np.degrees(np.arctan2(r[0, 1], r[0, 0]))
        return float(yaw), float(pitch), float(roll)


@dataclass(frozen=True)
class HeadFit:
    pose: Pose
    points: np.ndarray  # (68, 3): the fitted face's points; x, y in the photo's pixels, z toward the camera, mean z 0


@cache
def face_model() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 3D face model's mean (68, 3), its 50 directions (68, 3, 50) scaled by their spread, and the inner
    points' products of directions by axes (3, 3, 50, 50), which make each round's normal equations a sum
    of nine matrices: read once from the package."""
    with resources.files("keypoints.weights").joinpath("face_model_68.npz").open("rb") as f, np.load(f) as model:
        mean, basis, spread = (model[k].astype(np.float64) for k in ("mean", "basis", "spread"))
    basis = basis * spread
    return mean, basis, np.einsum("nak,nbl->abkl", basis[INNER], basis[INNER])


def fit_head(points: np.ndarray) -> HeadFit | None:
    """(68, 2) keypoints in a photo's pixels -> the fitted 3D face (its pose and 68 points in 3D); None when
    the points are not finite or too close together to place a face (an untrained model's)."""
    q = np.asarray(points, np.float64)
    if q.shape != (68, 2) or not np.isfinite(q).all():
        return None
    q = q * [1.0, -1.0]  # y up, as the model's
    mean, basis, products = face_model()
    target, ones = q[INNER], np.ones((len(INNER), 1))
    shape = mean
    for _ in range(ROUNDS):
        camera = np.linalg.lstsq(np.hstack([shape[INNER], ones]), target, rcond=None)[0]  # (4, 2): affine
        u, singular, vt = np.linalg.svd(camera[:3].T, full_matrices=False)
        rows, scale = u @ vt, float(singular.mean())  # the nearest scaled rotation (its first two rows)
        if not scale > 1e-9 * max(1.0, float(np.abs(q).max())):
            return None
        shift = (target - scale * shape[INNER] @ rows.T).mean(axis=0)
        rest = (target - shift) / scale - mean[INNER] @ rows.T  # what the shape must add, seen through the camera
        normal = np.einsum("ab,abkl->kl", rows.T @ rows, products) + RIDGE * np.eye(basis.shape[2])
        weights = np.linalg.solve(normal, np.einsum("nd,ndk->k", rest @ rows, basis[INNER]))
        shape = mean + basis @ weights
    rotation = np.vstack([rows, np.cross(rows[0], rows[1])])
    placed = scale * shape @ rotation.T
    placed[:, :2] += shift
    placed[:, 2] -= placed[:, 2].mean()
    placed[:, 1] *= -1  # back to the photo's y down; z stays toward the camera
    return HeadFit(euler(FLIP @ rotation @ FLIP), placed)


def euler(r: np.ndarray) -> Pose:
    """A rotation matrix (the head's axes -> the camera's) as R = Rz(roll) Ry(b) Rx(a), with yaw = -b and
    pitch = -a: a positive turn about the camera's y axis (pointing down) moves the nose to the photo's
    left, one about x (pointing right) moves it down."""
    b = np.degrees(np.arcsin(np.clip(-r[2, 0], -1.0, 1.0)))
    a = np.degrees(np.arctan2(r[2, 1], r[2, 2]))
    c = np.degrees(np.arctan2(r[1, 0], r[0, 0]))
    return Pose(yaw=float(-b), pitch=float(-a), roll=float(c))
