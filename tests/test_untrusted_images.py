"""The pixel budget is a guarantee (docs/RELIABILITY.md, issue 25 class 2): an image's size comes from
its header alone, before anything is decoded; a header that cannot be read is refused; and no
mutation of a real file's header or chunks gets more than one line, or more memory than its pixels."""

import struct
import tracemalloc
import zlib
from datetime import timedelta
from io import BytesIO

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import PHOTOS
from keypoints.core.errors import KeypointsError
from keypoints.core.io import image_from_bytes, read_image

BUDGET = 1_000_000  # pixels, for the fuzzing below: a photo of it is 3 MB as BGR


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def with_chunk(png: bytes, chunk: bytes) -> bytes:
    """`chunk` right after IHDR (8 bytes of signature, 25 of IHDR), where metadata goes."""
    return png[:33] + chunk + png[33:]


def peak_bytes(call) -> int:
    """The most memory Python and numpy (OpenCV's arrays are numpy's) held during `call()`."""
    tracemalloc.start()
    try:
        call()
    except KeypointsError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


@pytest.fixture(scope="module")
def grey_bomb() -> bytes:
    """A 30000 x 30000 grey PNG of under 1 MB without an eXIf chunk (the issue's case: 3 s and 0.9 GB to refuse)."""
    return cv2.imencode(".png", np.zeros((30000, 30000), np.uint8))[1].tobytes()


def test_a_png_bomb_is_refused_by_its_header_without_decoding(tmp_path, grey_bomb):
    path = tmp_path / "bomb.png"
    path.write_bytes(grey_bomb)
    with pytest.raises(KeypointsError, match=r"bomb\.png: 900 megapixels, above the limit of 100"):
        read_image(path)
    assert peak_bytes(lambda: read_image(path)) < 5 * len(grey_bomb) + 2**20  # in the file's bytes, not in its 900 MB of pixels


def test_an_odd_chunk_never_waves_the_budget_through(grey_bomb):
    """12000 x 12000 (144 MP) behind a text chunk of 2 MB, a zTXt that inflates to 50 MB and tEXt
    chunks above Pillow's text memory: each refused, none decoded."""
    big = cv2.imencode(".png", np.zeros((12000, 12000), np.uint8))[1].tobytes()
    cases = {
        "text.png": (with_chunk(big, png_chunk(b"tEXt", b"Comment\0" + b"x" * 2 * 2**20)), "144 megapixels, above the limit of 100"),
        "ztxt.png": (with_chunk(big, png_chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"\0" * 50 * 2**20))),
                     r"not a readable image \(its header could not be read: Decompressed data too large"),
        "texts.png": (with_chunk(big, b"".join(png_chunk(b"tEXt", b"C\0" + b"x" * 2**20) for _ in range(70))),
                      r"not a readable image \(its header could not be read: Too much memory used in text chunks"),
    }
    for name, (data, message) in cases.items():
        with pytest.raises(KeypointsError, match=rf"{name}: {message}"):
            image_from_bytes(data, name)
        assert peak_bytes(lambda: image_from_bytes(data, name)) < 5 * len(data) + 4 * 2**20  # Pillow's copies of the text, each at most 1 MB inflated


@pytest.mark.parametrize("name, data", [
    ("radiance.hdr", b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 30000 +X 30000\n" + b"\0" * 64),  # OpenCV would allocate 10.8 GB of floats
    ("float.pfm", b"PF\n30000 30000\n-1.0\n" + b"\0" * 64),
    ("image.exr", b"\x76\x2f\x31\x01" + b"\0" * 64),
    ("text.jpg", b"not an image at all"),
])
def test_a_format_without_a_readable_header_is_refused_unread(name, data):
    with pytest.raises(KeypointsError, match=rf"^{name}: not a readable image \(") as error:
        image_from_bytes(data, name)
    assert "\n" not in str(error.value)
    assert peak_bytes(lambda: image_from_bytes(data, name)) < 2**20


def test_a_png_with_exif_before_its_pixels_is_turned_upright():
    upright = cv2.resize(cv2.imread(str(PHOTOS / "obamas.jpg")), (160, 90))
    stored = cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE)
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = BytesIO()
    Image.fromarray(cv2.cvtColor(stored, cv2.COLOR_BGR2RGB)).save(buffer, format="PNG", exif=exif)
    assert image_from_bytes(buffer.getvalue(), "phone.png").shape == upright.shape


def seeds() -> dict[str, bytes]:
    """A real photo, small, in every format whose header is read: what the fuzzing mutates."""
    photo = cv2.resize(cv2.imread(str(PHOTOS / "obamas.jpg")), (96, 64))
    rgb = Image.fromarray(cv2.cvtColor(photo, cv2.COLOR_BGR2RGB))
    out = {}
    for fmt in ("JPEG", "PNG", "BMP", "TIFF", "WEBP", "PPM", "GIF"):
        buffer = BytesIO()
        rgb.save(buffer, format=fmt, **({"exif": Image.Exif()} if fmt in ("JPEG", "PNG") else {}))
        out[fmt] = buffer.getvalue()
    return out


SEEDS = seeds()
# Header fields a mutation may set to a huge, zero or odd size (PNG: IHDR's width and height,
# re-checksummed so the parser goes on; the others are byte edits anywhere in the first 256 bytes).
SIZES = st.sampled_from([0, 1, 2, 999, 1000, 1001, 65535, 65536, 30000, 2**31 - 1, 2**32 - 1])


def resized_png(data: bytes, width: int, height: int) -> bytes:
    body = struct.pack(">II", width, height) + data[24:29]
    return data[:8] + png_chunk(b"IHDR", body) + data[33:]


@st.composite
def mutated(draw) -> tuple[str, bytes]:
    fmt = draw(st.sampled_from(sorted(SEEDS)))
    data = SEEDS[fmt]
    if fmt == "PNG" and draw(st.booleans()):
        data = resized_png(data, draw(SIZES), draw(SIZES))
        if draw(st.booleans()):  # and an odd chunk before the pixels
            kind = draw(st.sampled_from([b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"iCCP", b"acTL", b"xxYz"]))
            data = with_chunk(data, png_chunk(kind, draw(st.binary(max_size=300))))
    edits = draw(st.lists(st.tuples(st.integers(0, min(255, len(data) - 1)), st.integers(0, 255)), max_size=6))
    data = bytearray(data)
    for offset, value in edits:
        data[offset] = value
    cut = draw(st.integers(len(data) // 2, len(data)))  # sometimes truncated
    return fmt, bytes(data[:cut])


# deadline: a guard against a hang, far above the milliseconds a case takes, not a speed measure
@settings(max_examples=300, deadline=timedelta(seconds=10), suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_fuzzed_headers_get_one_line_or_a_photo_within_the_budget(case):
    fmt, data = case
    source, result = f"fuzz.{fmt.lower()}", {}

    def read():
        result["image"] = image_from_bytes(data, source, BUDGET)

    assert peak_bytes(read) < 8 * BUDGET + 5 * len(data) + 2**20  # BGR of the budget, with a 16-bit or BGRA decode on the way
    if "image" in result:
        image = result["image"]
        assert image.shape[0] * image.shape[1] <= BUDGET and image.dtype == np.uint8 and image.shape[2] == 3
    else:
        with pytest.raises(KeypointsError) as error:
            image_from_bytes(data, source, BUDGET)
        assert str(error.value).startswith(f"{source}: ") and "\n" not in str(error.value)
