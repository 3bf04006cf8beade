"""Reading images by content (not by extension) into OpenCV's BGR uint8 layout, within a pixel budget.

The budget is a guarantee: an image's size is read from its header alone (Pillow, which reads no
pixels for it) before OpenCV decodes anything, and an image whose header cannot be read is refused,
never decoded blind.
"""

import errno
import os
import stat
import struct
import warnings
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
from PIL import Image

from keypoints.core.errors import KeypointsError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
# Every suffix a photo OpenCV reads may have (it is read by its content: a PNG named .jpg is fine); a folder
# run leaves out files whose names say they are something else (a labels.csv beside the photos), as image tools do
READABLE_SUFFIXES = IMAGE_SUFFIXES | {".jpe", ".dib", ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".pnm", ".sr", ".ras",
                                     ".jp2", ".gif", ".avif", ".heic", ".heif"}

# A photo above this many megapixels is refused by name before it is decoded (a 30000 x 30000
# PNG of a few hundred KB would need 2.7 GB as BGR): CLIs set it with `max_megapixels`.
MAX_MEGAPIXELS = 100
MAX_PIXELS = MAX_MEGAPIXELS * 10**6
# The formats whose headers Pillow reads and OpenCV decodes (EXR, HDR and PFM hold float pixels,
# which read_image refuses anyway). Pillow is asked about these alone: it opens nothing else.
HEADER_FORMATS = ("JPEG", "PNG", "BMP", "DIB", "TIFF", "WEBP", "PPM", "SUN", "JPEG2000", "GIF", "AVIF")
Image.MAX_IMAGE_PIXELS = None  # the budget is ours (read_image's max_pixels), not Pillow's warning
# Pillow warns in several lines about odd metadata it skips ("Corrupt EXIF data", "Tag data larger
# than file"); a photo gets one line, and only when it is refused.
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")


class TooManyPixels(KeypointsError):
    """A photo above the pixel budget (by its header): a server answers it with 413, not 415."""


def to_bgr(image, source: str = "image") -> np.ndarray:
    """Grayscale (H, W) or (H, W, 1), BGR or BGRA -> contiguous BGR uint8 (H, W, 3)."""
    if not isinstance(image, np.ndarray):
        raise KeypointsError(f"{source}: expected an image path or a uint8 array (H, W[, 3 or 4]), got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise KeypointsError(f"{source}: expected uint8 pixels, got {image.dtype}")
    if image.size == 0:
        raise KeypointsError(f"{source}: empty image {image.shape}")
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        # The public data set ships RGBA PNGs; its alpha channel is fully opaque, so drop it.
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return np.ascontiguousarray(image)
    raise KeypointsError(f"{source}: unsupported image shape {image.shape}; expected gray, BGR or BGRA")


def image_header(path: str | Path | BinaryIO, source: str = "image") -> tuple[tuple[int, int], int]:
    """((width, height), EXIF orientation 1-8) from the file's header alone, or one line naming
    `source` when there is no header of a format in HEADER_FORMATS to read, or Pillow refuses it.
    A PNG's orientation comes from an eXIf chunk before its pixels (where PNG writers put it):
    Pillow would decode the whole image to look for one after them."""
    try:
        with Image.open(path, formats=HEADER_FORMATS) as im:
            w, h = im.size
            exif = im.format != "PNG" or "exif" in im.info
            orientation = im.getexif().get(0x0112, 1) if exif and im.format in ("JPEG", "TIFF", "WEBP", "PNG") else 1
    except (OSError, SyntaxError, EOFError, struct.error):  # unknown format (UnidentifiedImageError), truncated, bad checksum
        raise KeypointsError(f"{source}: not a readable image (empty, corrupt or not an image format)") from None
    except Exception as e:  # noqa: BLE001 - any other header Pillow chokes on is refused too, never decoded blind
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
        raise KeypointsError(f"{source}: not a readable image (its header could not be read: {reason})") from None
    return (w, h), orientation if orientation in range(1, 9) else 1


def image_pixels(path: str | Path) -> int | None:
    """Width x height from the header alone; None when it cannot be read (read_image then says why)."""
    try:
        with open_file(path) as f:
            width, height = image_header(f, str(path))[0]
            return width * height
    except KeypointsError:
        return None


def not_a_file(path: str | Path) -> str | None:
    """What `path` is when it is not a regular file (nor a link to one): "a FIFO", "a broken link",
    ...; None for a regular file. Opening a FIFO or a device to read it could block forever."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "a broken link" if os.path.islink(path) else "not found"
    except OSError as e:
        return "a symlink loop" if e.errno == errno.ELOOP else f"not readable ({e.strerror})"
    return _kind(mode)


def _kind(mode: int) -> str | None:
    for test, kind in ((stat.S_ISREG, None), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device")):
        if test(mode):
            return kind
    return "not a regular file"


@contextmanager
def open_file(path: str | Path):
    """`path` opened for reading if it is a regular file, or one line saying what it is. Opened
    without blocking and checked on the open file itself, so a FIFO put in its place after a listing
    never hangs the reader."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as e:
        raise KeypointsError(f"{path}: {_not_opened(path, e)}") from None
    kind = _kind(os.fstat(fd).st_mode)
    if kind is not None:
        os.close(fd)
        raise KeypointsError(f"{path}: {kind}, not an image file")
    with os.fdopen(fd, "rb") as f:
        yield f


def _not_opened(path, error: OSError) -> str:
    kind = not_a_file(path)
    if kind is None:  # a regular file that would not open: its permissions, a file system's refusal, ...
        return f"image file cannot be read ({error.strerror or error})"
    return "image file not found" if kind == "not found" else f"{kind}, not an image file"


# EXIF orientation -> what turns the stored pixels into the photo as it is shown (as Pillow's
# ImageOps.exif_transpose does): phones store portrait photos sideways with orientation 6 or 8.
_UPRIGHT = {
    2: lambda im: cv2.flip(im, 1),
    3: lambda im: cv2.rotate(im, cv2.ROTATE_180),
    4: lambda im: cv2.flip(im, 0),
    5: lambda im: cv2.transpose(im),
    6: lambda im: cv2.rotate(im, cv2.ROTATE_90_CLOCKWISE),
    7: lambda im: cv2.flip(cv2.transpose(im), -1),
    8: lambda im: cv2.rotate(im, cv2.ROTATE_90_COUNTERCLOCKWISE),
}


def check_pixels(pixels: int, max_pixels: int, source: str) -> None:
    """The pixel budget: one line naming `source` when it holds more than `max_pixels`."""
    if pixels > max_pixels:
        raise TooManyPixels(f"{source}: {pixels / 1e6:.3g} megapixels, above the limit of {max_pixels / 1e6:g} "
                            "(a decompression bomb, or a huge scan: raise max_megapixels= to read it)")


def read_image(path: str | Path, max_pixels: int = MAX_PIXELS, upright: bool = True) -> np.ndarray:
    """Decode any image OpenCV understands (JPEG, PNG named .jpg, ...) to BGR uint8; a file above
    `max_pixels` by its header is refused by name before decoding. `upright`: turned as its EXIF
    orientation says, as photo viewers show it (keypoints are then in those pixels); labelled data
    sets pass False, their labels being in the stored pixels."""
    with open_file(path) as f:
        data = np.frombuffer(f.read(), dtype=np.uint8)
    return image_from_bytes(data, str(path), max_pixels, upright)


def image_from_bytes(data: bytes | np.ndarray, source: str, max_pixels: int = MAX_PIXELS,
                     upright: bool = True) -> np.ndarray:
    """An encoded image held in memory (a file's bytes, an upload) -> BGR uint8, as read_image
    reads a file; `source` names it in errors. Nothing is written to disk."""
    data = np.frombuffer(data, dtype=np.uint8) if isinstance(data, bytes) else data
    (width, height), orientation = image_header(BytesIO(data), source)
    check_pixels(width * height, max_pixels, source)
    image = to_bgr(decode_buffer(data, source), source)
    return np.ascontiguousarray(_UPRIGHT[orientation](image)) if upright and orientation in _UPRIGHT else image


def decode(path: Path, what: str = "empty, corrupt or not an image format") -> np.ndarray:
    """The file's pixels as OpenCV decodes them (gray, BGR or BGRA; 16-bit brought to 8), or one line."""
    with open_file(path) as f:
        return decode_buffer(np.frombuffer(f.read(), dtype=np.uint8), str(path), what)


def decode_buffer(data: np.ndarray, source: str, what: str = "empty, corrupt or not an image format") -> np.ndarray:
    """Encoded bytes (uint8 array) -> pixels as OpenCV decodes them, as `decode`; `source` names them in errors."""
    try:
        with opencv_quiet():  # libtiff's and libpng's complaints: the file gets one line, below
            image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except cv2.error as e:
        raise KeypointsError(f"{source}: not a readable image ({str(e).strip().splitlines()[-1][:120]})") from None
    if image is None or image.size == 0:
        raise KeypointsError(f"{source}: not a readable image ({what})")
    if image.dtype == np.uint16:  # 16-bit PNGs: keep the significant byte
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:  # 32-bit float TIFF / EXR and the like: not a photo this reads
        raise KeypointsError(f"{source}: {image.dtype} pixels; expected an 8- or 16-bit image")
    return image


@contextmanager
def opencv_quiet(keep_errors: bool = False):
    """OpenCV's own log lines (its codecs' complaints; a line per video backend tried) silenced while the
    caller decodes or encodes, and says in one line what went wrong; `keep_errors`: its error lines still show."""
    logging, level = cv2.utils.logging, cv2.utils.logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_ERROR if keep_errors else logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging.setLogLevel(level)


def shrink(image: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float]:
    """A copy no longer than `max_side` (None: no limit) for a detector to look at, and its scale.
    Area averaging, as cv2.INTER_AREA gives, but a large photo is first brought to twice the target
    bilinearly: INTER_AREA alone costs ~30 ms on a 3648 px photo, the two steps ~2 ms, and differ
    from it by ~1 grey level on average."""
    f = min(1.0, max_side / max(image.shape[:2])) if max_side else 1.0
    if f >= 1.0:
        return image, 1.0
    size = (max(1, round(image.shape[1] * f)), max(1, round(image.shape[0] * f)))
    if f < 0.5:
        image = cv2.resize(image, (2 * size[0], 2 * size[1]), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), f


def images_under(folder: Path) -> list[Path]:
    """Every image file under `folder`, its sub-folders included (LFW keeps one folder a person), sorted
    by path; [] when there are none or it is not a folder."""
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()) if folder.is_dir() else []
