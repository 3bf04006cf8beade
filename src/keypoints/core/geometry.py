"""Where training and inference meet: image or face box -> network input, and back.

Every sample carries a 2x3 affine `to_input` (original pixels -> network-input pixels). The
network predicts keypoints normalised to about [-1, 1] of its input (centre at S/2, unit S/4: a
face filling about half of the input spans [-1, 1], as in the Udacity project's (p - 100) / 50); `to_original` undoes both
steps, so metrics and the detector always report keypoints in the original photo's pixels.
"""

import math

import cv2
import numpy as np


def normalize(points: np.ndarray, size: int) -> np.ndarray:
    """Input-pixel coordinates of a `size` x `size` input -> centred, in units of size / 4."""
    return (points - size / 2.0) / (size / 4.0)


def denormalize(points, size: int):
    """Inverse of `normalize`; works on NumPy arrays and tensors alike."""
    return points * (size / 4.0) + size / 2.0


def affine_from_probes(original_wh: tuple[int, int], probes_after: np.ndarray) -> np.ndarray:
    """The affine that a geometric augmentation applied, recovered from three probe points.

    The transform pipeline moves the image corners (0,0), (w,0), (0,h) along with the keypoints;
    any composition of resizes, crops, flips, rotations and shifts is affine, so three point pairs
    determine it exactly. This keeps the geometry honest without re-implementing albumentations.
    """
    return cv2.getAffineTransform(probes(original_wh), np.asarray(probes_after, np.float32))


def probes(original_wh: tuple[int, int]) -> np.ndarray:
    w, h = original_wh
    return np.array([[0, 0], [w, 0], [0, h]], np.float32)


def invert(affine: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(affine.astype(np.float64))


def apply(affine, points):
    """Apply 2x3 affine(s) to (..., N, 2) points; NumPy (one affine) or torch (batched, B x 2 x 3)."""
    if type(points).__module__.startswith("torch"):  # a tensor (training), told apart without importing torch
        affine = affine.to(points.dtype)
        return points @ affine[..., :2].transpose(-1, -2) + affine[..., None, :, 2]
    return points @ affine[:, :2].T + affine[:, 2]


def to_original(pred_normalized, from_input, size: int):
    """Network output (B, 68, 2) normalised -> original-image pixels, using the inverse affines."""
    return apply(from_input, denormalize(pred_normalized, size))


def rotation(angle: float) -> np.ndarray:
    """The 2x2 matrix that turns column vectors by `angle` degrees, clockwise on screen (y down):
    R @ v turns v; for row vectors, points @ R turns them back by `angle`."""
    c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    return np.array([[c, -s], [s, c]])


def square_to_input(centre, side: float, size: int, angle: float = 0.0, mirror: bool = False) -> np.ndarray:
    """Affine mapping a square (centre, side, rotated by `angle` degrees) onto a `size` x `size` input,
    optionally mirrored left-right (x -> size - x, the continuous mirror that `crop` samples exactly)."""
    s = size / side
    c, r = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    linear = s * np.array([[c, r], [-r, c]])  # positive angle: the face turns anticlockwise in the input
    if mirror:
        linear[0] *= -1
    offset = np.array([size / 2.0, size / 2.0]) - linear @ np.asarray(centre, np.float64)
    return np.hstack([linear, offset[:, None]])


def box_to_input(box: tuple[float, float, float, float], size: int, scale: float = 1.0) -> np.ndarray:
    """Affine mapping a square around a face box (x, y, w, h), grown by `scale`, onto the input."""
    x, y, w, h = box
    return square_to_input((x + w / 2.0, y + h / 2.0), max(w, h) * scale, size)


def nearest_box(boxes, point, containing: bool = False) -> int | None:
    """The index of the (x, y, w, h) box whose centre is nearest `point` (only boxes holding the
    point, when `containing`), or None: which found face a labelled face is."""
    x, y = point
    near = [(np.hypot(bx + bw / 2 - x, by + bh / 2 - y), i) for i, (bx, by, bw, bh) in enumerate(boxes)
            if not containing or (bx <= x <= bx + bw and by <= y <= by + bh)]
    return min(near)[1] if near else None


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The 2x3 affine `outer` after `inner`."""
    return np.hstack([outer[:, :2] @ inner[:, :2], outer[:, :2] @ inner[:, 2:] + outer[:, 2:]])


def frame_move(old: np.ndarray, new: np.ndarray, size: int) -> float:
    """How far a new frame (2x3 affine onto a `size` x `size` input) is from an old one: the largest
    shift, in x or y, of the new input's corners seen in the old input, as a share of its side (a
    shift, a zoom and a turn alike move corners). 0: the same crop."""
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64)
    return float(np.abs(apply(compose(np.asarray(old, np.float64), invert(new)), corners) - corners).max() / size)


def framed_box_to_input(box, size: int, scale: float, shift_x: float = 0.0, shift_y: float = 0.0) -> np.ndarray:
    """`box_to_input` for a framing measured on training images: the crop is `scale` times the box
    side and its centre sits (shift_x, shift_y) box sides away from the box centre."""
    x, y, w, h = box
    side = max(w, h)
    return box_to_input((x + shift_x * side, y + shift_y * side, w, h), size, scale)


def crop(image: np.ndarray, to_input: np.ndarray, size: int, border: int = cv2.BORDER_REPLICATE, gray: bool = False) -> np.ndarray:
    """The `size` x `size` network input that `to_input` (original -> input pixels) cuts out of `image`;
    `gray`: one channel, weighed as albumentations' ToGray does (keypoints.inference.pipeline).

    Pixels are sampled the way cv2.resize made every training input: it aligns pixel centres,
    x -> (x + 0.5) s - 0.5, while keypoints move by x -> s x; the models learned that half-pixel
    offset, so the crop reproduces it. A downscale beyond 2x first halves the image with cv2.pyrDown
    (Gaussian pre-filter): a face in a large photo would otherwise alias under bilinear sampling.
    The affine is worked on as six floats: on arrays of six, NumPy's per-call cost was a third of a
    face's crop (~0.1 ms).
    """
    (a, b, c), (d, e, f) = np.asarray(to_input, np.float64).tolist()
    affine = [a, b, c + (a + b) / 2 - 0.5, d, e, f + (d + e) / 2 - 0.5]
    levels, scale = 0, math.sqrt(abs(a * e - b * d))
    while scale * 2**levels < 0.5 and min(image.shape[:2]) >> levels >= 2:
        levels += 1
    to_gray = gray and image.ndim == 3
    if levels or to_gray:
        image, affine = _region(image, affine, size, 2**levels)
        if to_gray:  # before the pyramid and the warp: a third of their work (the same values within a grey level)
            image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    for _ in range(levels):
        image = cv2.pyrDown(image)  # pixel i of the half-size image is centred on pixel 2i
        affine = [affine[0] * 2, affine[1] * 2, affine[2], affine[3] * 2, affine[4] * 2, affine[5]]
    return cv2.warpAffine(image, np.array(affine).reshape(2, 3), (size, size), flags=cv2.INTER_LINEAR, borderMode=border)


def _region(image: np.ndarray, affine: list, size: int, step: int) -> tuple[np.ndarray, list]:
    """The part of `image` that the crop samples, and the `affine` (six floats) for it. Only that part
    needs the pyramid (for a face in a 3648 px photo, ~10 ms less per face) and the gray conversion. It
    is cut at multiples of `step`, the pyramid's last pixel size, with a margin beyond the filters'
    reach, so every sampled value is the one the whole image gives; at the image's own edges the cut
    is the edge itself."""
    h, w = image.shape[:2]
    a, b, c, d, e, f = affine
    det = a * e - b * d
    if det == 0:
        return image, affine
    # the input's corners (a pixel beyond each) back in the image: the inverse affine
    corners = [((e * (u - c) - b * (v - f)) / det, (a * (v - f) - d * (u - c)) / det)
               for u, v in ((-1, -1), (size, -1), (-1, size), (size, size))]
    xs, ys = [x for x, _ in corners], [y for _, y in corners]
    margin = 4 * step  # pyrDown's 5-tap filter reaches 2 pixels of each level, bilinear 1 of the last
    x0, y0 = max(0, math.floor((min(xs) - margin) / step) * step), max(0, math.floor((min(ys) - margin) / step) * step)
    x1, y1 = min(w, math.ceil(max(xs) + margin)), min(h, math.ceil(max(ys) + margin))
    if x1 - x0 < 2 * step or y1 - y0 < 2 * step:  # (almost) all outside the image: the border decides
        return image, affine
    return image[y0:y1, x0:x1], [a, b, c + a * x0 + b * y0, d, e, f + d * x0 + e * y0]


def turned(image: np.ndarray, angle: float, border: int = cv2.BORDER_REPLICATE) -> tuple[np.ndarray, np.ndarray]:
    """`image` turned by `angle` degrees (anticlockwise on screen) on a canvas that keeps every
    corner, and the 2x3 affine from `image`'s pixels to the turned one's."""
    h, w = image.shape[:2]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    c, s = abs(turn[0, 0]), abs(turn[0, 1])
    size = (round(w * c + h * s), round(w * s + h * c))
    turn[:, 2] += (np.array(size) - (w, h)) / 2
    return cv2.warpAffine(image, turn, size, borderMode=border), turn


def box_iou(a, b) -> float:
    """Intersection over union of two boxes (x, y, w, h, ...: a face row or a FoundFace box)."""
    w = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    union = a[2] * a[3] + b[2] * b[3] - w * h
    return float(w * h / union) if union > 0 else 0.0
