"""How a face stage's boxes sit on the training data's faces: where each stage's `keypoint_box` and
`framing` (keypoints.inference.faces.config) come from. `python scripts/measure_framing.py detector=yunet`.

For each of `n` random training photos the box nearest the labelled keypoints is taken; its offsets
are measured in the face's own upright frame (turned by the roll the stage reports; 0 for Haar), in
box sides (a box's longer side, as geometry.framed_box_to_input uses it).
"""

from pathlib import Path

import numpy as np

from keypoints.core import geometry
from keypoints.core.annotations import read_annotations
from keypoints.inference.framing import keypoint_box
from keypoints.core.io import read_image


def upright(points: np.ndarray, centre: np.ndarray, roll: float) -> np.ndarray:
    """(N, 2) image points -> the face's upright frame around `centre` (the roll undone)."""
    return (points - centre) @ geometry.rotation(roll)


def measure_framing(faces, labels, images, n: int, seed: int) -> dict:
    """Medians (and the spread of the keypoint-box guess) over `n` seeded photos of a labelled CSV
    (`labels`, the Udacity layout) of the folder `images`: the training split of the model's data."""
    names, points = read_annotations(Path(labels))
    picked = np.random.default_rng(seed).choice(len(names), min(n, len(names)), replace=False)
    ratios = []
    for i in picked:
        image = read_image(Path(images) / names[i], upright=False)
        found = faces(image)
        if not found:
            continue
        face = found[geometry.nearest_box([f.box for f in found], keypoint_box(points[i])[0])]
        x, y, w, h = face.box
        side, centre = max(w, h), np.array([x + w / 2, y + h / 2])
        fh, fw = image.shape[:2]
        p = upright(points[i], centre, face.roll)
        k_low, k_high = p.min(axis=0), p.max(axis=0)
        frame_shift = (np.array([fw, fh]) / 2 - centre) / side
        ratios.append([np.sqrt(fw * fh) / side, *frame_shift, (k_high - k_low).max() / side, *((k_low + k_high) / 2 / side)])
    if not ratios:
        return {"found": 0.0}
    ratios = np.array(ratios)
    median = np.median(ratios, axis=0)
    # how far a box's guess of the keypoint box is off, in keypoint-box sides: the jitter that
    # face-crop training (conf/data/face.yaml) has to cover
    spread = {"side_log_std": np.log(ratios[:, 3] / median[3]).std(),
              "shift_x_std": ((ratios[:, 4] - median[4]) / ratios[:, 3]).std(),
              "shift_y_std": ((ratios[:, 5] - median[5]) / ratios[:, 3]).std()}
    r = lambda v: round(float(v), 3)  # noqa: E731
    return {"found": r(len(ratios) / len(picked)), "photos": int(len(picked)),
            "framing": {"scale": r(median[0]), "shift_x": r(median[1]), "shift_y": r(median[2])},
            "keypoint_box": {"side": r(median[3]), "shift_x": r(median[4]), "shift_y": r(median[5])},
            "keypoint_box_spread": {k: r(v) for k, v in spread.items()}}
