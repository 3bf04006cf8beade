import cv2
import numpy as np
import pytest

from keypoints.errors import KeypointsError
from keypoints.io import read_image, to_bgr
from conftest import DATA


@pytest.fixture
def photo():
    return cv2.imread(str(next((DATA / "training").iterdir())))


@pytest.mark.parametrize("mode", ["bgr_jpeg", "rgba_png_named_jpg", "gray_png"])
def test_every_input_mode_decodes_to_the_same_bgr(tmp_path, photo, mode):
    path = tmp_path / "face.jpg"
    if mode == "bgr_jpeg":
        expected = photo
        path.write_bytes(cv2.imencode(".png", photo)[1].tobytes())  # lossless, to compare pixels
    elif mode == "rgba_png_named_jpg":
        expected = photo
        path.write_bytes(cv2.imencode(".png", cv2.cvtColor(photo, cv2.COLOR_BGR2BGRA))[1].tobytes())
    else:
        gray = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)
        expected = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
        path.write_bytes(cv2.imencode(".png", gray)[1].tobytes())
    image = read_image(path)
    assert image.shape == photo.shape and image.dtype == np.uint8
    np.testing.assert_array_equal(image, expected)


def test_arrays_as_opencv_reads_them(photo):
    assert to_bgr(cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)).shape == photo.shape
    np.testing.assert_array_equal(to_bgr(cv2.cvtColor(photo, cv2.COLOR_BGR2BGRA)), photo)
    with pytest.raises(KeypointsError, match="unsupported image shape"):
        to_bgr(np.zeros((4, 4, 2), np.uint8))


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\xff\xd8\xff\xe0" + b"\x00" * 64])
def test_unreadable_files_name_the_file(tmp_path, content):
    path = tmp_path / "broken.jpg"
    path.write_bytes(content)
    with pytest.raises(KeypointsError, match=r"broken\.jpg: not a readable image"):
        read_image(path)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(KeypointsError, match=r"missing\.jpg: image file not found"):
        read_image(tmp_path / "missing.jpg")
