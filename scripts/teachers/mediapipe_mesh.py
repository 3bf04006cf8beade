"""A teacher for scripts/pseudo_label.py: MediaPipe's face mesh (Apache-2.0) on a list of photos.

Runs in its own environment (`make teacher-env`: mediapipe 0.10.21, the last release whose wheel
ships its models, needs numpy < 2), so it imports nothing from keypoints:

    .venv-mediapipe/bin/python scripts/teachers/mediapipe_mesh.py LIST OUT.npz [--no-mirror]

LIST: one image path a line. OUT.npz: `points` (N, 2, 468, 2) float32 pixels, the mesh of the face
nearest the photo's centre in the photo ([:, 0]) and in its mirror image ([:, 1], in the mirror's
pixels), NaN where no face was found; (N, 1, 468, 2), the photos only, with --no-mirror.
"""

import sys

import cv2
import mediapipe as mp
import numpy as np


def nearest_centre_mesh(mesh, image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    result = mesh.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    if not result.multi_face_landmarks:
        return np.full((468, 2), np.nan, np.float32)
    faces = [np.array([[p.x * w, p.y * h] for p in face.landmark[:468]], np.float32) for face in result.multi_face_landmarks]
    return min(faces, key=lambda f: np.hypot(*(f.mean(axis=0) - (w / 2, h / 2))))


def main(list_file: str, out: str, mirror: bool = True) -> None:
    paths = [line.strip() for line in open(list_file) if line.strip()]
    points = np.full((len(paths), 2 if mirror else 1, 468, 2), np.nan, np.float32)
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=4, refine_landmarks=False,
                                         min_detection_confidence=0.5) as mesh:
        for i, path in enumerate(paths):
            image = cv2.imread(path, cv2.IMREAD_COLOR)
            if image is None:
                print(f"{path}: not a readable image, skipped", file=sys.stderr)
                continue
            points[i, 0] = nearest_centre_mesh(mesh, image)
            if mirror:
                points[i, 1] = nearest_centre_mesh(mesh, image[:, ::-1].copy())
            if (i + 1) % 500 == 0:
                print(f"{i + 1}/{len(paths)}", file=sys.stderr)
    np.savez_compressed(out, points=points)


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4) or sys.argv[3:] not in ([], ["--no-mirror"]):
        sys.exit("usage: mediapipe_mesh.py LIST OUT.npz [--no-mirror]")
    main(sys.argv[1], sys.argv[2], mirror=sys.argv[3:] != ["--no-mirror"])
