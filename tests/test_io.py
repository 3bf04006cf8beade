from pathlib import Path

import cv2
import numpy as np
import pytest

from keypoints.core.errors import KeypointsError
from keypoints.core.io import read_image, to_bgr
from conftest import DATA, PHOTOS


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



@pytest.mark.skipif(not Path("/proc/sys/vm/drop_caches").exists(), reason="needs Linux's /proc")
def test_a_file_that_will_not_open_is_not_called_missing():
    """/proc/sys/vm/drop_caches is a regular file that no one, root included, may open to read."""
    with pytest.raises(KeypointsError, match=r"^/proc/sys/vm/drop_caches: image file cannot be read \(Permission denied\)$"):
        read_image("/proc/sys/vm/drop_caches")

def test_a_phone_photo_stored_sideways_is_read_as_shown(tmp_path):
    """Phones store portrait photos sideways with an EXIF orientation; photo viewers (and users)
    see them upright, so the detector reads them upright. Labelled data keeps the stored pixels."""
    from PIL import Image

    import keypoints

    upright = cv2.imread(str(PHOTOS / "obamas.jpg"))
    stored = cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE)  # what orientation 6 says to turn back
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(cv2.cvtColor(stored, cv2.COLOR_BGR2RGB)).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    shown = read_image(tmp_path / "phone.jpg")
    assert shown.shape == upright.shape and np.abs(shown.astype(int) - upright).mean() < 3
    assert read_image(tmp_path / "phone.jpg", upright=False).shape == stored.shape
    assert len(keypoints.Detector()(tmp_path / "phone.jpg")) == 2
