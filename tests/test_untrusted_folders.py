"""Folder entries that are not files are named and never opened blocking; outputs never collide,
never write through a link, and an unwritable output folder is found before work
(docs/RELIABILITY.md, issue 25 classes 3 and 4)."""

import os
import socket
import threading
from pathlib import Path

import cv2
import pytest

from conftest import PHOTOS, run_script
from keypoints.inference import runner
from keypoints.core.errors import KeypointsError
from keypoints.core.io import open_file, read_image
from keypoints.core.outputs import guard_outputs
from keypoints.inference.runner import folder_listing, output_names


@pytest.fixture
def odd_folder(tmp_path):
    """Three photos whose outputs would collide (a.jpg, a.png, a.png.png) beside a FIFO, a socket, a
    broken link, a symlink loop, a link to a photo and a subfolder."""
    folder = tmp_path / "in"
    folder.mkdir()
    photo = cv2.resize(cv2.imread(str(PHOTOS / "obamas.jpg")), (320, 180))
    cv2.imwrite(str(folder / "a.jpg"), photo)
    cv2.imwrite(str(folder / "a.png"), cv2.resize(photo, (160, 90)))  # the one size that tells its drawing apart
    cv2.imwrite(str(folder / "a.png.png"), photo)
    cv2.imwrite(str(folder / "b.png"), cv2.flip(photo, 1))
    os.mkfifo(folder / "pipe.jpg")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(folder / "sock.jpg"))
    (folder / "broken.jpg").symlink_to(tmp_path / "nowhere.jpg")
    (folder / "loop1.jpg").symlink_to(folder / "loop2.jpg")
    (folder / "loop2.jpg").symlink_to(folder / "loop1.jpg")
    (folder / "link.jpg").symlink_to(folder / "a.jpg")
    (folder / "sub").mkdir()
    yield folder
    server.close()


def test_the_listing_names_what_is_not_a_file(odd_folder):
    files, skipped = folder_listing(odd_folder)
    assert [p.name for p in files] == ["a.jpg", "a.png", "a.png.png", "b.png", "link.jpg"]
    assert {p.name: kind for p, kind in skipped} == {
        "broken.jpg": "a broken link", "loop1.jpg": "a symlink loop", "loop2.jpg": "a symlink loop",
        "pipe.jpg": "a FIFO", "sock.jpg": "a socket"}


def test_a_fifo_is_never_opened_blocking(odd_folder):
    """Even one that takes a file's place after the listing: read in a thread that must come back."""
    result = {}
    reader = threading.Thread(target=lambda: result.update(error=_error(lambda: read_image(odd_folder / "pipe.jpg"))), daemon=True)
    reader.start()
    reader.join(30)  # a blocking open would never return: 30 s is a hang guard, not a speed measure
    assert not reader.is_alive() and result["error"] == f"{odd_folder / 'pipe.jpg'}: a FIFO, not an image file"
    with pytest.raises(KeypointsError, match="a device, not an image file"):
        with open_file("/dev/zero"):
            pass


def _error(call) -> str:
    try:
        call()
    except KeypointsError as e:
        return str(e)
    return ""


def test_detect_names_every_odd_entry_and_keeps_every_output(odd_folder, tmp_path):
    out = tmp_path / "out"
    proc = run_script("detect.py", f"input={odd_folder}", f"output={out}", check=False, timeout=120)
    assert proc.returncode == 2
    for name, kind in (("pipe.jpg", "a FIFO"), ("sock.jpg", "a socket"), ("broken.jpg", "a broken link"),
                       ("loop1.jpg", "a symlink loop")):
        assert f"error: {odd_folder / name}: {kind}, not a file (skipped unopened)" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: 5 of 10 files failed: broken.jpg (a broken link, not a file)")
    written = sorted(p.name for p in out.iterdir() if p.name != runner.MADE_LOG)  # beside them: what made them
    assert written == sorted(f"{n}{s}" for n in ("a.jpg", "a.png", "a.png.png", "b", "link") for s in (".png", ".json"))
    sizes = {cv2.imread(str(out / f"{n}.png")).shape[:2] for n in ("a.jpg", "a.png", "a.png.png")}
    assert sizes == {(180, 320), (90, 160)}  # a.png's drawing (90 x 160) was not replaced by another's


@pytest.mark.parametrize("entry, kind", [("pipe.jpg", "a FIFO"), ("/dev/zero", "a device")])
def test_a_special_file_as_input_is_one_line(odd_folder, tmp_path, entry, kind):
    source = odd_folder / entry  # an absolute entry stays itself
    proc = run_script("detect.py", f"input={source}", f"output={tmp_path / 'out'}", check=False, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip() == (
        f"error: {source}: {kind}, not a file (input=an image, a folder of images or a video file)")


@pytest.mark.parametrize("files, expected", [
    (["a.jpg", "a.png", "a.png.png"], ["a.jpg", "a.png", "a.png.png"]),
    (["x.jpg", "y.png"], ["x", "y"]),
    (["Photo.jpg", "photo.png"], ["Photo.jpg", "photo.png"]),  # one file on macOS and Windows
    (["clip.mp4", "clip.mp4.jpg", "clip.png"], ["clip.mp4", "clip.mp4", "clip.png"]),  # clip.mp4.mp4 beside clip.mp4.png
])
def test_distinct_inputs_get_distinct_outputs(tmp_path, files, expected):
    names, targets = output_names([tmp_path / f for f in files], tmp_path / "out", True)
    assert [names[tmp_path / f] for f in files] == expected
    every = [t.name.casefold() for ts in targets.values() for t in ts]
    assert len(every) == len(set(every))


def test_outputs_that_cannot_differ_are_refused_before_work(tmp_path):
    with pytest.raises(KeypointsError, match=r"A.jpg and a.jpg: their outputs would have the same name"):
        output_names([tmp_path / "A.jpg", tmp_path / "a.jpg"], tmp_path / "out", True)


def test_overwrite_never_writes_through_a_link_to_an_input(tmp_path):
    """overwrite=true replaces earlier outputs, but an output hard- or soft-linked to an input is refused."""
    photo, out = tmp_path / "in" / "a.jpg", tmp_path / "out"
    photo.parent.mkdir()
    out.mkdir()
    cv2.imwrite(str(photo), cv2.imread(str(PHOTOS / "obamas.jpg")))
    before = photo.read_bytes()
    os.link(photo, out / "a.png")
    for overwrite in (False, True):
        with pytest.raises(KeypointsError, match=r"out/a.png: output would overwrite an input \(the same file, or a link to it\)"):
            guard_outputs(out, [photo], [out / "a.png", out / "a.json"], overwrite)
    (out / "a.png").unlink()
    (out / "a.json").symlink_to(photo)
    proc = run_script("detect.py", f"input={photo}", f"output={out}", "overwrite=true", check=False, timeout=120)
    assert proc.returncode == 2 and "a.json: output would overwrite an input" in proc.stderr
    (out / "a.json").unlink()
    elsewhere = tmp_path / "precious.txt"
    elsewhere.write_text("keep me")
    (out / "a.json").symlink_to(elsewhere)  # an earlier output replaced by a link to some other file
    run_script("detect.py", f"input={photo}", f"output={out}", "overwrite=true", timeout=120)
    assert elsewhere.read_text() == "keep me" and not (out / "a.json").is_symlink()
    assert photo.read_bytes() == before


def test_an_output_folder_that_cannot_be_written_is_refused_before_work():
    """/proc is a folder that not even root can write in (the tests may run as root, whom chmod does not stop)."""
    with pytest.raises(KeypointsError, match=r"^/proc: output folder cannot be written \("):
        guard_outputs(Path("/proc"), [], [], False)
