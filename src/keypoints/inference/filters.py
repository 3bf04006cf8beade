"""Fun filters: an RGBA overlay scaled to each face, turned with its roll and alpha-blended in place.

Placement per kind (iBUG 68-point indices, 0-based): the overlay's opaque part is scaled to
`width` x the face width (jaw points 0 to 16), turned so its horizontal follows the line between
the eye centres (points 36-41 and 42-47), and its `pivot` (fractions of its opaque part) lands on
the mean of `points`, raised by `lift` face widths along the face's up direction.
"""

from importlib import resources
from pathlib import Path

import cv2
import numpy as np
from omegaconf import OmegaConf

from keypoints.core import geometry, landmarks
from keypoints.core.errors import KeypointsError
from keypoints.core.io import decode, image_header

# One source for both the CLI (Hydra group `overlays`) and the Python defaults.
_DEFAULTS = OmegaConf.to_container(OmegaConf.load(resources.files("keypoints.conf") / "overlays" / "default.yaml"))
PLACEMENTS: dict = _DEFAULTS["placements"]
OVERLAY_FILES: dict = _DEFAULTS["overlay_files"]
# An overlay is drawn a few hundred pixels wide: 16 megapixels (4096 x 4096) is ample, and keeps a
# custom file's decode under ~64 MB (a 20000 x 20000 RGBA PNG would take 1.6 GB and seconds).
MAX_OVERLAY_PIXELS = 16_777_216


def default_sunglasses() -> np.ndarray:
    """The built-in overlay: dark lenses, a black frame and a glint, drawn on a transparent BGRA canvas."""
    canvas = np.zeros((160, 420, 4), np.uint8)
    for cx in (110, 310):
        cv2.ellipse(canvas, (cx, 80), (92, 62), 0, 0, 360, (35, 30, 25, 235), -1, cv2.LINE_AA)  # lens
        cv2.ellipse(canvas, (cx, 80), (92, 62), 0, 0, 360, (10, 10, 10, 255), 9, cv2.LINE_AA)  # rim
        cv2.ellipse(canvas, (cx - 30, 62), (38, 20), -20, 200, 290, (255, 255, 255, 150), 5, cv2.LINE_AA)  # glint
    cv2.ellipse(canvas, (210, 74), (22, 16), 0, 200, 340, (10, 10, 10, 255), 9, cv2.LINE_AA)  # bridge
    for x0, x1 in ((18, 0), (402, 419)):
        cv2.line(canvas, (x0, 58), (x1, 52), (10, 10, 10, 255), 9, cv2.LINE_AA)  # hinges
    return canvas


def load_overlay(spec: str, overlay_dir: str | Path = "data/overlays", kind: str | None = None,
                 files: dict | None = None) -> tuple[np.ndarray, str]:
    """`sunglasses`, `moustache`, `hat` (a file in `overlay_dir`) or the path of an RGBA PNG ->
    (BGRA uint8, kind). Sunglasses fall back to the built-in drawing when no file is there."""
    files = files or OVERLAY_FILES
    if spec in files:
        path, kind = Path(overlay_dir) / files[spec], kind or spec
        if not path.is_file():
            if spec == "sunglasses":
                return default_sunglasses(), kind
            raise KeypointsError(f"{path}: overlay '{spec}' not found "
                                 f"(set overlay_dir=... or KEYPOINTS_OVERLAYS to a folder with {files[spec]})")
    else:
        path = Path(spec)
        if not path.is_file():
            raise KeypointsError(f"{path}: overlay file not found (overlay=sunglasses|moustache|hat or the path of an RGBA PNG)")
        kind = kind or next((k for k in PLACEMENTS if k in path.stem.lower()), None)
        if kind is None:
            raise KeypointsError(f"{path}: can't tell where this overlay goes; add kind=sunglasses, moustache or hat")
    width, height = image_header(path, str(path))[0]  # by its header, before decoding
    pixels = width * height
    if pixels > MAX_OVERLAY_PIXELS:
        raise KeypointsError(f"{path}: overlay of {pixels / 1e6:.1f} megapixels, above the limit of {MAX_OVERLAY_PIXELS / 1e6:.1f} "
                             "(4096 x 4096); scale it down")
    image = decode(path, "the overlay must be an RGBA PNG")
    if image.ndim != 3 or image.shape[2] != 4:
        raise KeypointsError(f"{path}: overlay has no alpha channel (save it as an RGBA PNG with a transparent background)")
    if not image[..., 3].any():
        raise KeypointsError(f"{path}: overlay is fully transparent (nothing would be drawn)")
    return image, kind


def opaque_part(overlay: np.ndarray) -> np.ndarray:
    """The overlay cut to the bounding box of its visible pixels, so `width` means what one sees."""
    ys, xs = np.nonzero(overlay[..., 3])
    if len(xs) == 0:
        raise KeypointsError("overlay is fully transparent")
    return overlay[ys.min():ys.max() + 1, xs.min():xs.max() + 1]


def placement(keypoints: np.ndarray, overlay_wh: tuple[int, int], kind: str, placements: dict | None = None) -> np.ndarray:
    """The 2x3 affine from overlay pixels (opaque part) to photo pixels for one face."""
    where = (placements or PLACEMENTS)[kind]
    angle = np.radians(landmarks.roll(keypoints))  # the eye line's turn, clockwise on screen
    face_width = float(np.linalg.norm(keypoints[16] - keypoints[0]))
    up = np.array([np.sin(angle), -np.cos(angle)])
    anchor = keypoints[list(where["points"])].mean(axis=0) + where["lift"] * face_width * up
    w, h = overlay_wh
    pivot = (where["pivot"][0] * w, where["pivot"][1] * h)
    # getRotationMatrix2D turns counter-clockwise on screen for a positive angle; the face's roll
    # is measured clockwise (y points down), hence the minus.
    affine = cv2.getRotationMatrix2D(pivot, -np.degrees(angle), where["width"] * face_width / w)
    affine[:, 2] += anchor - np.array(pivot)
    return affine


def blend(image: np.ndarray, overlay: np.ndarray, affine: np.ndarray) -> None:
    """Alpha-blend the BGRA `overlay`, moved by `affine`, into BGR `image` in place (only the
    overlay's bounding box is touched). Colours are premultiplied by alpha before resampling so
    the transparent pixels' colour doesn't bleed into the edges."""
    h, w = overlay.shape[:2]
    corners = geometry.apply(affine, np.array([[0, 0], [w, 0], [0, h], [w, h]], np.float64))
    x0, y0 = np.maximum(np.floor(corners.min(axis=0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(corners.max(axis=0)).astype(int), image.shape[1::-1])
    if x1 <= x0 or y1 <= y0:
        return
    scale = np.sqrt(abs(np.linalg.det(affine[:, :2])))
    rgba = overlay.astype(np.float32) / 255.0
    rgba[..., :3] *= rgba[..., 3:]
    if scale < 1:  # shrink with INTER_AREA first: warpAffine alone would alias a big overlay
        small = cv2.resize(rgba, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        affine = affine @ np.diag([w / small.shape[1], h / small.shape[0], 1.0])
        rgba = small
    affine = affine - np.array([[0, 0, x0], [0, 0, y0]])
    moved = cv2.warpAffine(rgba, affine, (int(x1 - x0), int(y1 - y0)), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
    roi = image[y0:y1, x0:x1].astype(np.float32) / 255.0
    out = moved[..., :3] + roi * (1.0 - moved[..., 3:])
    image[y0:y1, x0:x1] = np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)


def apply(image: np.ndarray, faces, overlay: np.ndarray, kind: str, placements: dict | None = None) -> np.ndarray:
    """A copy of BGR `image` with `overlay` placed on every face (objects with `.keypoints`)."""
    out = image.copy()
    part = opaque_part(overlay)
    for face in faces:
        points = np.asarray(face.keypoints, np.float64)
        if np.isfinite(points).all():
            blend(out, part, placement(points, part.shape[1::-1], kind, placements))
    return out

