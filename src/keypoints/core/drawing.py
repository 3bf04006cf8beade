"""Faces drawn onto their photo: boxes, scores, keypoints, and head-pose axes with the 3D points' depth (OpenCV, BGR uint8).
What `keypoints detect` and the web demo draw; training's pictures (keypoints.training.viz) use the same strokes."""

import cv2
import numpy as np

TRUTH, PREDICTION, BOX = (60, 200, 60), (40, 40, 255), (255, 190, 0)  # BGR


def draw_points(image: np.ndarray, points, color, radius: int = 2) -> np.ndarray:
    """Filled dots (in place); points are (68, 2) in the image's pixels."""
    for x, y in np.asarray(points, np.float64):
        if np.isfinite(x) and np.isfinite(y):
            cv2.circle(image, (int(round(x)), int(round(y))), radius, color, -1, cv2.LINE_AA)
    return image


def draw_faces(image: np.ndarray, faces, pose: bool = False) -> np.ndarray:
    """A copy of `image` with each face's box, score (and track id, in a video) and keypoints, and
    with `pose` its head pose as axes from the nose and its fitted 3D points as rings coloured by depth;
    strokes grow with the photo."""
    out = image.copy()
    unit = max(1, round(max(image.shape[:2]) / 500))
    for face in faces:
        x, y, w, h = face.box
        cv2.rectangle(out, (x, y), (x + w, y + h), BOX, 2 * unit, cv2.LINE_AA)
        label = " ".join(([] if face.score is None else [f"{face.score:.1f}"])
                         + ([] if face.track is None else [f"#{face.track}"]))
        if label:
            cv2.putText(out, label, (x, max(0, y - 4 * unit)), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * unit, BOX, unit, cv2.LINE_AA)
        draw_points(out, face.keypoints, PREDICTION, radius=max(1, round(w / 60)))
        if pose and face.pose is not None:
            draw_axes(out, face.keypoints[30], face.pose.matrix(), max(w, h) / 2, unit)
        if pose and getattr(face, "keypoints_3d", None) is not None:
            draw_depth(out, face.keypoints_3d, radius=max(2, round(w / 40)))
    return out


def draw_depth(image: np.ndarray, points, radius: int = 3) -> None:
    """3D points (in place) as rings at their x, y, coloured by z over the face: the nearest to the camera
    yellow, the farthest dark purple (OpenCV's inferno map): the far side of a turned head shows dark."""
    points = np.asarray(points, np.float64)
    z = points[:, 2]
    spread = np.ptp(z) if np.isfinite(z).all() and np.ptp(z) > 0 else 1.0
    shades = np.clip(255 * (z - z.min()) / spread, 0, 255).astype(np.uint8)
    colors = cv2.applyColorMap(shades[:, None], cv2.COLORMAP_INFERNO)[:, 0]
    for (x, y, _), color in zip(points, colors):
        if np.isfinite(x) and np.isfinite(y):
            cv2.circle(image, (int(round(x)), int(round(y))), radius, tuple(int(c) for c in color), 1, cv2.LINE_AA)


def draw_axes(image: np.ndarray, origin, rotation: np.ndarray, length: float, unit: int = 1) -> None:
    """A head's axes (in place) from `origin`, as seen from the camera: its right (red), down (green)
    and forward, out of the face (blue), each `length` pixels long when it lies in the picture's plane."""
    o = np.asarray(origin, np.float64)
    for axis, color in ((rotation[:, 0], (0, 0, 255)), (rotation[:, 1], (0, 200, 0)), (-rotation[:, 2], (255, 0, 0))):
        end = o + length * axis[:2]
        cv2.line(image, tuple(np.round(o).astype(int)), tuple(np.round(end).astype(int)), color, 2 * unit, cv2.LINE_AA)
