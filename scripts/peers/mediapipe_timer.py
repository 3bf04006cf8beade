"""A speed peer for scripts/benchmark_speed.py: MediaPipe's face mesh (BlazeFace + the 192-px mesh
network, XNNPACK), photos one at a time, as a user would run it (`static_image_mode`, 5 faces).

Runs in its own environment (`make teacher-env`: mediapipe 0.10.21 needs numpy < 2), so it imports
nothing from keypoints. keypoints.benchmarks.peers.MediaPipePeer drives it over stdin and stdout:

    .venv-mediapipe/bin/python scripts/peers/mediapipe_timer.py LIST
    -> {"ready": N}                       the photos of LIST (one path a line) decoded, one warm-up call
    <- pass                               one timed pass over them, photos already in memory
    -> {"seconds": S, "faces": F}         (decoding is not timed; the BGR -> RGB copy it needs is)
"""

import json
import sys
import time

import cv2
import mediapipe as mp


def main(list_file: str) -> None:
    paths = [line.strip() for line in open(list_file) if line.strip()]
    photos = [cv2.imread(p, cv2.IMREAD_COLOR) for p in paths]
    bad = [p for p, image in zip(paths, photos) if image is None]
    if bad:
        sys.exit(f"{bad[0]}: not a readable image")
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=5, refine_landmarks=False,
                                         min_detection_confidence=0.5) as mesh:
        mesh.process(cv2.cvtColor(photos[0], cv2.COLOR_BGR2RGB))  # warm-up: graph start, XNNPACK's packing
        print(json.dumps({"ready": len(photos)}), flush=True)
        for line in sys.stdin:
            if line.strip() != "pass":
                break
            start, faces = time.perf_counter(), 0
            for image in photos:
                found = mesh.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)).multi_face_landmarks
                faces += len(found or [])
            print(json.dumps({"seconds": time.perf_counter() - start, "faces": faces}), flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: mediapipe_timer.py LIST")
    main(sys.argv[1])
