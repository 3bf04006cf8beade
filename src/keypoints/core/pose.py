"""Head pose from the 68 keypoints: yaw, pitch and roll in degrees, by fitting a 3D mean face.

    pose = head_pose(face.keypoints, image.shape)   # Pose(yaw=..., pitch=..., roll=...); Face.pose holds it

Convention (the camera's view; docs/JSON.md): yaw > 0 when the nose turns to the photo's right (the
person looks to their own left), pitch > 0 when the face turns up, roll > 0 when the head tilts
clockwise on screen (as keypoints.core.landmarks.roll). The rotation is R = Rz(roll) Ry(-yaw) Rx(-pitch)
in the camera's axes (x right, y down, z ahead): roll comes last, so turning a photo by an angle changes
roll by that angle and leaves yaw and pitch alone, and a mirror image negates yaw and roll.

How: cv2.solvePnP (SQPnP: globally optimal, no initial guess) fits MEAN_FACE to the 51 inner points
(brows, nose, eyes, mouth) under a pinhole camera whose focal length is the photo's longer side and
whose centre is the photo's centre. The lens is unknown, and it matters: halving or doubling that
focal length moved yaw and pitch by 2 to 11 degrees on the faces of obamas.jpg and mona_lisa.jpg.
The jaw (0-16) is left out: it is the face's outline, which slides over the head as it turns.

Where MEAN_FACE comes from: MediaPipe Face Mesh (Apache-2.0, the face_landmark.tflite model in the
mediapipe 0.10.21 wheel) run on 300-W's 1,810 training photos (1,808 found; the markup the default
model learnt) gave 468 3D points a face; these were aligned (generalised Procrustes) and averaged, and
each of the 68 points was read from the mesh vertex nearest its labels on average (VERTEX below; mean
gap 0.051 eye distances; on the Udacity frames' labels, the table before: 0.067), then the face was
made mirror-symmetric. MediaPipe's canonical_face_model.obj, the obvious source, is not in
its wheels (0.10.21 and 1.2.3 checked). scripts/make_mean_face.py re-makes the table. Terms: the
numbers are measured geometry, no MediaPipe code or file; the model that measured them is MediaPipe's
(Apache-2.0), the photos and labels it measured are 300-W's (non-commercial research; docs/MODEL_CARD.md), so the table carries no terms beyond those of the shipped model.
Units: x right, y down, z away from the viewer; origin between the outer eye corners (36, 45), which
are 100 units apart. Zero pose: those corners level, and the plane through them and the chin (8)
facing the camera.
"""

from dataclasses import dataclass

import cv2
import numpy as np

# MediaPipe Face Mesh vertex behind each of the 68 points (measured: scripts/make_mean_face.py)
VERTEX = [
    127, 227, 177, 215, 172, 136, 149, 148, 152, 377, 378, 365, 397, 435, 401, 447, 356, 70, 63,
    105, 66, 107, 336, 296, 334, 293, 300, 168, 197, 195, 4, 75, 97, 2, 328, 460, 7, 159, 158, 155,
    153, 144, 382, 385, 387, 249, 373, 380, 61, 39, 37, 0, 267, 304, 291, 405, 314, 17, 84, 181, 62,
    38, 13, 268, 292, 317, 14, 87
]
MEAN_FACE = np.array([
    (-80.8, 3.7, 59.6), (-79.7, 19.5, 39.1), (-76.8, 51.1, 40.6), (-72.7, 66.1, 38.3),
    (-63.9, 87.1, 46.5), (-55.4, 98.0, 34.2), (-35.7, 114.3, 16.0), (-14.7, 124.6, 2.1),
    (0.0, 126.1, -0.0), (14.7, 124.6, 2.1), (35.7, 114.3, 16.0), (55.4, 98.0, 34.2),
    (63.9, 87.1, 46.5), (72.7, 66.1, 38.3), (76.8, 51.1, 40.6), (79.7, 19.5, 39.1),
    (80.8, 3.7, 59.6), (-66.0, -18.3, 3.1), (-58.6, -24.9, -6.6), (-47.5, -28.4, -14.6),
    (-33.1, -27.7, -21.5), (-16.8, -25.8, -25.0), (16.8, -25.8, -25.0), (33.1, -27.7, -21.5),
    (47.5, -28.4, -14.6), (58.6, -24.9, -6.6), (66.0, -18.3, 3.1), (0.0, -6.2, -23.7),
    (0.0, 11.0, -34.5), (0.0, 18.6, -40.6), (0.0, 36.5, -49.9), (-16.5, 46.9, -24.3),
    (-9.4, 50.3, -27.2), (0.0, 51.3, -29.1), (9.4, 50.3, -27.2), (16.5, 46.9, -24.3),
    (-50.0, 0.0, -0.0), (-41.7, -6.7, -6.2), (-32.4, -6.9, -7.4), (-21.8, 0.7, -4.3),
    (-30.5, 2.3, -6.2), (-42.6, 2.3, -4.2), (21.8, 0.7, -4.3), (32.4, -6.9, -7.4),
    (41.7, -6.7, -6.2), (50.0, 0.0, -0.0), (42.6, 2.3, -4.2), (30.5, 2.3, -6.2),
    (-31.6, 74.5, -3.3), (-20.5, 69.6, -19.3), (-9.2, 65.8, -27.1), (0.0, 67.0, -28.1),
    (9.2, 65.8, -27.1), (20.5, 69.6, -19.3), (31.6, 74.5, -3.3), (17.5, 87.0, -16.1),
    (9.4, 90.1, -19.5), (0.0, 91.0, -20.3), (-9.4, 90.1, -19.5), (-17.5, 87.0, -16.1),
    (-28.2, 74.4, -5.1), (-8.1, 72.7, -23.5), (0.0, 73.7, -21.5), (8.1, 72.7, -23.5),
    (28.2, 74.4, -5.1), (7.7, 79.8, -18.2), (0.0, 80.2, -19.3), (-7.7, 79.8, -18.2),
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
