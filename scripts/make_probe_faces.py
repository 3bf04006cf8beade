"""Re-makes the crops `backend=auto` times the shipped model's files on (keypoints/weights/probe_faces.png):
the face of examples/astronaut.jpg (public domain, examples/README.md) and its mirror image, as the shipped
model's two passes frame them, side by side at its input size.

    python scripts/make_probe_faces.py
"""

from pathlib import Path

import cv2
import numpy as np

import keypoints
from keypoints.core import outputs
from keypoints.inference.choice import PROBE_FACES

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    detector = keypoints.Detector.from_checkpoint(backend="onnxruntime", workers=1)
    seen, network = [], detector.predictor

    def recording(batch: np.ndarray) -> np.ndarray:  # the network's inputs, as the pipeline hands them over
        seen.append(batch.copy())
        return network(batch)

    detector._alone = recording
    photo = cv2.imread(str(REPO / "examples" / "astronaut.jpg"))
    for image in (photo, photo[:, ::-1].copy()):
        if len(detector(image)) != 1:
            raise SystemExit("examples/astronaut.jpg: expected one face")
    crops = np.round(np.concatenate(seen)[:, 0] * 255).astype(np.uint8)  # the shipped model's input: gray / 255
    outputs.write_image(PROBE_FACES, np.hstack(list(crops)))
    print(f"wrote {PROBE_FACES}: {len(crops)} crops of {crops.shape[1]} px")


if __name__ == "__main__":
    main()
