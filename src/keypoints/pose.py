"""Head pose from the 68 keypoints: yaw, pitch and roll in degrees, by fitting a 3D mean face.

    pose = head_pose(face.keypoints, image.shape)   # Pose(yaw=..., pitch=..., roll=...); Face.pose holds it

Convention (the camera's view; docs/JSON.md): yaw > 0 when the nose turns to the photo's right (the
person looks to their own left), pitch > 0 when the face turns up, roll > 0 when the head tilts
clockwise on screen (as keypoints.landmarks.roll). The rotation is R = Rz(roll) Ry(-yaw) Rx(-pitch)
in the camera's axes (x right, y down, z ahead): roll comes last, so turning a photo by an angle changes
roll by that angle and leaves yaw and pitch alone, and a mirror image negates yaw and roll.

How: cv2.solvePnP (SQPnP: globally optimal, no initial guess) fits MEAN_FACE to the 51 inner points
(brows, nose, eyes, mouth) under a pinhole camera whose focal length is the photo's longer side and
whose centre is the photo's centre. The lens is unknown, and it matters: halving or doubling that
focal length moved yaw and pitch by 2 to 11 degrees on the faces of obamas.jpg and mona_lisa.jpg.
The jaw (0-16) is left out: it is the face's outline, which slides over the head as it turns.

Where MEAN_FACE comes from: MediaPipe Face Mesh (Apache-2.0, the face_landmark.tflite model in the
mediapipe 0.10.21 wheel) run on the 3,452 training photos (3,445 found) gave 468 3D points a face;
these were aligned (generalised Procrustes) and averaged, and each of the 68 points was read from
the mesh vertex nearest its labels on average (VERTEX below; mean gap 0.067 eye distances), then the
face was made mirror-symmetric. MediaPipe's canonical_face_model.obj, the obvious source, is not in
its wheels (0.10.21 and 1.2.3 checked). scripts/make_mean_face.py re-makes the table. Terms: the
numbers are measured geometry, no MediaPipe code or file; the model that measured them is MediaPipe's
(Apache-2.0), the photos it measured are the training set's (Udacity / YouTube Faces, a research data
set; docs/MODEL_CARD.md), so the table carries no terms beyond those of the shipped model.
Units: x right, y down, z away from the viewer; origin between the outer eye corners (36, 45), which
are 100 units apart. Zero pose: those corners level, and the plane through them and the chin (8)
facing the camera.
"""

from dataclasses import dataclass

import cv2
import numpy as np

# MediaPipe Face Mesh vertex behind each of the 68 points (measured: scripts/make_mean_face.py)
VERTEX = [
    127, 234, 177, 215, 172, 136, 149, 176, 152, 400, 379, 365, 397, 435, 401, 454, 356,
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300, 6, 195, 5, 1, 99, 97, 164,
    326, 460, 7, 160, 158, 133, 153, 144, 381, 385, 387, 263, 254, 374, 146, 73, 72,
    11, 302, 304, 273, 405, 314, 17, 84, 181, 146, 82, 13, 311, 375, 316, 15, 86,
]
MEAN_FACE = np.array([
    (-80.6, 2.4, 57.0), (-79.8, 18.6, 62.5), (-76.4, 51.3, 38.9), (-72.5, 66.6, 36.7),
    (-64.4, 87.9, 44.7), (-56.0, 99.4, 32.7), (-40.8, 112.9, 19.0), (-26.4, 122.6, 7.3),
    (0.0, 128.6, 0.0), (26.4, 122.6, 7.2), (40.8, 112.9, 19.0), (56.0, 99.4, 32.7),
    (64.4, 87.9, 44.7), (72.5, 66.6, 36.7), (76.4, 51.3, 38.9), (79.8, 18.6, 62.5),
    (80.6, 2.4, 57.0), (-64.7, -17.2, 1.7), (-57.3, -23.3, -8.0), (-46.1, -26.4, -15.7),
    (-31.9, -25.6, -22.3), (-16.1, -23.6, -25.7), (16.1, -23.6, -25.7), (31.9, -25.6, -22.3),
    (46.1, -26.4, -15.7), (57.3, -23.3, -8.0), (64.7, -17.2, 1.7), (0.0, 4.2, -28.7),
    (0.0, 20.2, -39.9), (0.0, 28.5, -45.9), (0.0, 45.6, -46.0), (-13.4, 49.8, -24.8),
    (-8.6, 52.4, -26.4), (0.0, 57.7, -26.5), (8.6, 52.4, -26.4), (13.4, 49.8, -24.8),
    (-50.0, 0.0, 0.0), (-43.4, -4.1, -6.4), (-31.5, -4.7, -8.4), (-22.4, 1.2, -5.7),
    (-32.6, 3.3, -6.8), (-41.9, 5.2, -5.1), (22.4, 1.2, -5.7), (31.5, -4.7, -8.4),
    (43.4, -4.1, -6.4), (50.0, 0.0, 0.0), (41.9, 5.2, -5.1), (32.6, 3.3, -6.8),
    (-28.7, 82.2, -6.7), (-18.0, 73.8, -18.9), (-8.1, 72.0, -25.5), (0.0, 72.4, -26.5),
    (8.1, 72.0, -25.5), (18.0, 73.8, -18.9), (28.7, 82.2, -6.7), (16.2, 88.0, -16.5),
    (8.7, 90.8, -19.3), (0.0, 91.6, -19.9), (-8.7, 90.8, -19.3), (-16.2, 88.0, -16.5),
    (-26.2, 80.5, -8.5), (-9.5, 75.7, -18.6), (0.0, 76.0, -21.0), (9.5, 75.7, -18.6),
    (26.2, 80.5, -8.5), (7.7, 82.7, -19.2), (0.0, 83.6, -20.2), (-7.7, 82.7, -19.2),
])
INNER = np.arange(17, 68)  # the points the pose is fitted on


@dataclass(frozen=True)
class Pose:
    yaw: float  # degrees; > 0: the nose turns to the photo's right
    pitch: float  # degrees; > 0: the face turns up
    roll: float  # degrees; > 0: the head tilts clockwise on screen

    def to_json(self) -> dict:
        return {"yaw": round(self.yaw, 1), "pitch": round(self.pitch, 1), "roll": round(self.roll, 1)}

    def matrix(self) -> np.ndarray:
        """The rotation (mean face -> camera axes) this pose stands for; `euler` inverts it."""
        a, b, c = np.radians([-self.pitch, -self.yaw, self.roll])
        rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
        ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
        rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
        return rz @ ry @ rx


def head_pose(points: np.ndarray, image_shape: tuple) -> Pose | None:
    """(68, 2) keypoints in a photo's pixels, and the photo's shape (height, width, ...) -> its
    Pose; None when the points are not finite or the fit fails."""
    points = np.asarray(points, np.float64)[INNER]
    if not np.isfinite(points).all():
        return None
    height, width = image_shape[:2]
    focal = float(max(height, width))
    camera = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]])
    try:
        ok, rvec, _ = cv2.solvePnP(MEAN_FACE[INNER], points, camera, None, flags=cv2.SOLVEPNP_SQPNP)
    except cv2.error:  # points too close together to fit a head (an untrained model's): no pose
        return None
    if not ok:
        return None
    return euler(cv2.Rodrigues(rvec)[0])


def euler(r: np.ndarray) -> Pose:
    """A rotation matrix (mean face -> camera) as R = Rz(roll) Ry(b) Rx(a), with yaw = -b and pitch =
    -a: a positive turn about the camera's y axis (pointing down) moves the nose to the photo's left,
    one about x (pointing right) moves it down."""
    b = np.degrees(np.arcsin(np.clip(-r[2, 0], -1.0, 1.0)))
    a = np.degrees(np.arctan2(r[2, 1], r[2, 2]))
    c = np.degrees(np.arctan2(r[1, 0], r[0, 0]))
    return Pose(yaw=float(-b), pitch=float(-a), roll=float(c))
