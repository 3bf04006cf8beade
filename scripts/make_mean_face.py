"""Re-makes keypoints.core.pose's 3D mean face: MediaPipe Face Mesh's 468 3D points on each training
photo, aligned and averaged; each of the 68 points is the mesh vertex nearest its labels on average.

Needs MediaPipe (Apache-2.0), which keypoints does not depend on: it runs in the teachers'
environment (`make teacher-env`: mediapipe 0.10.21, whose wheel ships face_landmark.tflite):
    .venv-mediapipe/bin/python scripts/make_mean_face.py $KEYPOINTS_DATA   # prints VERTEX and MEAN_FACE for pose.py
"""

import csv
import sys
from pathlib import Path

import cv2
import mediapipe as mp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from keypoints.core.landmarks import FLIP  # noqa: E402 - NumPy alone: it imports in MediaPipe's environment


def similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """`source` (N, 3) moved by the rotation, scale and shift that best fit it onto `target` (Umeyama)."""
    s0, t0 = source - source.mean(0), target - target.mean(0)
    u, d, vt = np.linalg.svd(t0.T @ s0)
    fix = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ fix @ vt
    scale = (d * np.diag(fix)).sum() / (s0 ** 2).sum()
    return scale * s0 @ rotation.T + target.mean(0)


def main(root: Path) -> None:
    rows = list(csv.reader(open(root / "training_frames_keypoints.csv")))[1:]
    meshes, labels = [], []
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1) as mesh:
        for row in rows:
            image = cv2.imread(str(root / "training" / row[0]))
            found = mesh.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)).multi_face_landmarks
            if found:  # x, y are shares of the width and height; z is in the width's scale (smaller: nearer)
                h, w = image.shape[:2]
                meshes.append([(p.x * w, p.y * h, p.z * w) for p in found[0].landmark])
                labels.append(np.array(row[1:137], float).reshape(68, 2))
    meshes, labels = np.array(meshes), np.array(labels)
    # the 68 -> 468 map: for each labelled point, the vertex nearest it on average (in eye distances)
    eyes = np.linalg.norm(labels[:, 45] - labels[:, 36], axis=1)[:, None, None]
    gaps = np.linalg.norm(labels[:, :, None] - meshes[:, None, :, :2], axis=3) / eyes
    vertex = gaps.mean(0).argmin(1)
    # generalised Procrustes: every mesh onto the running mean, three rounds
    mean = meshes[0]
    for _ in range(3):
        mean = np.mean([similarity(m, mean) for m in meshes], axis=0)
    face = mean[vertex]
    # made mirror-symmetric: averaged with its mirror image (x -> -x, left and right points swapped)
    mirror = (face * [-1, 1, 1])[FLIP]
    face = (face + similarity(mirror, face)) / 2
    # upright: x along the eye corners (36 -> 45), y down the face, z away from the viewer; origin
    # between the eye corners, 100 units = the outer eye corners' distance
    x = face[45] - face[36]
    y = face[8] - (face[36] + face[45]) / 2
    y -= x * (x @ y) / (x @ x)
    axes = np.stack([x / np.linalg.norm(x), y / np.linalg.norm(y), np.cross(x, y) / np.linalg.norm(np.cross(x, y))])
    face = (face - (face[36] + face[45]) / 2) @ axes.T * 100 / np.linalg.norm(x)
    print(f"# {len(meshes)} of {len(rows)} training faces; mean nearest-vertex gap "
          f"{gaps.mean(0).min(1).mean():.3f} eye distances")
    print("VERTEX = " + repr(vertex.tolist()))
    for i in range(0, 68, 4):
        print("    " + " ".join(f"({p[0]:.1f}, {p[1]:.1f}, {p[2]:.1f})," for p in face[i:i + 4]))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
