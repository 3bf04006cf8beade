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
ROUNDS = 1  # shape steps, each between two camera steps (1, 2 and 3 tied on the first wild half: 3.99 degrees, 4.71%)
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


@dataclass(frozen=True)
class FaceModel:
    mean: np.ndarray  # (68, 3): the mean face, x right, y up, z toward the viewer
    basis: np.ndarray  # (68, 3, 50): the shape and expression directions, each scaled by its spread
    inner_basis: np.ndarray  # (51, 3, 50): the inner points' directions
    products: np.ndarray  # (3, 3, 50, 50): inner directions by axes, whose sum makes the normal equations
    ridge: np.ndarray  # (50, 50): RIDGE times the identity
    mean_solve: np.ndarray  # (3, 51): the mean face's inner points, centred, as least squares' left inverse
    inner_mean: np.ndarray  # (51, 3): the mean face's inner points
    inner_centre: np.ndarray  # (3,): their centroid


@cache
def face_model() -> FaceModel:
    """The 3D face model and what each fit reuses, read once from the package."""
    with resources.files("keypoints.weights").joinpath("face_model_68.npz").open("rb") as f, np.load(f) as model:
        mean, basis, spread = (model[k].astype(np.float64) for k in ("mean", "basis", "spread"))
    basis = basis * spread
    inner = basis[INNER]
    centred = mean[INNER] - mean[INNER].mean(axis=0)
    return FaceModel(mean, basis, inner, np.einsum("nak,nbl->abkl", inner, inner), RIDGE * np.eye(basis.shape[2]),
                     np.linalg.solve(centred.T @ centred, centred.T), mean[INNER], mean[INNER].mean(axis=0))


def fit_head(points: np.ndarray) -> HeadFit | None:
    """(68, 2) keypoints in a photo's pixels -> the fitted 3D face (its pose and 68 points in 3D); None when
    the points are not finite or too close together to place a face (an untrained model's)."""
    return fit_heads([points])[0]


def fit_heads(faces) -> list[HeadFit | None]:
    """fit_head for several faces at once (a photo's, a batch's): the same arithmetic on stacked arrays, so a
    face costs a fraction of what it costs alone."""
    out: list[HeadFit | None] = [None] * len(faces)
    good = [i for i, p in enumerate(faces) if np.shape(p) == (68, 2) and np.isfinite(p).all()]
    if not good:
        return out
    q = np.asarray([faces[i] for i in good], np.float64) * [1.0, -1.0]  # y up, as the model's
    model = face_model()
    target = q[:, INNER]
    target_mean = target.sum(axis=1) / len(INNER)
    centred_target = target - target_mean[:, None]
    shape = model.mean
    with np.errstate(all="ignore"):  # a degenerate face gives NaN or 0 here: refused below, by its scale
        rows, scale, shift = _camera(model.mean_solve @ centred_target, model.inner_centre, target_mean)
        for _ in range(ROUNDS):
            rows_t = rows.transpose(0, 2, 1)
            rest = (target - shift[:, None]) / scale[:, None, None] - model.inner_mean @ rows_t  # what the shape must add
            normal = np.einsum("nab,abkl->nkl", rows_t @ rows, model.products) + model.ridge
            weights = np.linalg.solve(normal, np.einsum("nid,idk->nk", rest @ rows, model.inner_basis)[..., None])[..., 0]
            shape = model.mean + np.einsum("idk,nk->nid", model.basis, weights)
            inner = shape[:, INNER]
            inner_mean = inner.sum(axis=1) / len(INNER)
            centred = inner - inner_mean[:, None]
            linear = np.linalg.solve(np.einsum("nia,nib->nab", centred, centred), np.einsum("nia,nij->naj", centred, centred_target))
            rows, scale, shift = _camera(linear, inner_mean, target_mean)
    rotation = np.empty((len(q), 3, 3))
    rotation[:, :2] = rows
    (a0, a1, a2), (b0, b1, b2) = rows[:, 0].T, rows[:, 1].T
    rotation[:, 2, 0], rotation[:, 2, 1], rotation[:, 2, 2] = a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0
    placed = scale[:, None, None] * shape @ rotation.transpose(0, 2, 1)
    placed[..., :2] += shift[:, None]
    placed[..., 2] -= placed[..., 2].mean(axis=1, keepdims=True)
    placed[..., 1] *= -1  # back to the photo's y down; z stays toward the camera
    size = np.abs(q).max(axis=(1, 2))
    for k, i in enumerate(good):
        if scale[k] > 1e-9 * max(1.0, size[k]) and np.isfinite(rotation[k]).all():  # else: points too close to place a face
            out[i] = HeadFit(euler(FLIP @ rotation[k] @ FLIP), placed[k])
    return out


def _camera(linear: np.ndarray, model_mean: np.ndarray, target_mean: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The scaled orthographic camera nearest each face's least-squares affine camera (`linear` (N, 3, 2): model
    point -> keypoint, both centred; the means' difference the shift): its linear part's nearest scaled rotation
    (A Aᵀ)^-1/2 A, in closed form for 2x2. Its first two rows (N, 2, 3), scale (N,) and shift (N, 2); called under
    fit_heads' np.errstate, as a degenerate face gives NaN here."""
    a = linear.transpose(0, 2, 1)  # (N, 2, 3)
    k = a @ linear
    root_det = np.sqrt(np.maximum(k[:, 0, 0] * k[:, 1, 1] - k[:, 0, 1] ** 2, 0))
    norm = np.sqrt(k[:, 0, 0] + k[:, 1, 1] + 2 * root_det)
    p, r, s = (k[:, 0, 0] + root_det) / norm, k[:, 0, 1] / norm, (k[:, 1, 1] + root_det) / norm  # the root [[p, r], [r, s]]
    det = p * s - r * r
    inverse = np.empty_like(k)
    inverse[:, 0, 0], inverse[:, 0, 1], inverse[:, 1, 0], inverse[:, 1, 1] = s / det, -r / det, -r / det, p / det
    rows = inverse @ a
    scale = (p + s) / 2  # NaN for a degenerate face
    shift = target_mean - scale[:, None] * (rows @ model_mean if model_mean.ndim == 1 else np.einsum("na,nja->nj", model_mean, rows))
    return rows, scale, shift


def euler(r: np.ndarray) -> Pose:
    """A rotation matrix (the head's axes -> the camera's) as R = Rz(roll) Ry(b) Rx(a), with yaw = -b and
    pitch = -a: a positive turn about the camera's y axis (pointing down) moves the nose to the photo's
    left, one about x (pointing right) moves it down."""
    b = np.degrees(np.arcsin(np.clip(-r[2, 0], -1.0, 1.0)))
    a = np.degrees(np.arctan2(r[2, 1], r[2, 2]))
    c = np.degrees(np.arctan2(r[1, 0], r[0, 0]))
    return Pose(yaw=float(-b), pitch=float(-a), roll=float(c))
