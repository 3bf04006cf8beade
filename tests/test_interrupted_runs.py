"""Nothing half-written, nothing lost (issue 32): outputs are written whole or not at all, a killed
run leaves only whole files and its rerun finishes the rest, a full disk stops the run in one line."""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import DATA, PHOTOS, REPO, run_script
from keypoints.core import outputs
from keypoints.inference import runner
from keypoints.core.errors import KeypointsError

PNG_END = b"\0\0\0\0IEND\xaeB`\x82"


def whole_png(path: Path) -> bool:
    data = path.read_bytes()
    return data.startswith(b"\x89PNG\r\n\x1a\n") and data.endswith(PNG_END)


def assert_only_whole_files(out: Path, killed: bool = False) -> None:
    """Every output whole; a temporary file only after a SIGKILL (nothing can clean up after one: it is
    hidden, named as temporary, and the rerun removes it and redoes its photo)."""
    for path in out.iterdir():
        if killed and path.name.startswith(".") and ".part" in path.name:
            continue
        assert ".part" not in path.name, f"{path.name}: a temporary file left behind"
        if path.suffix == ".png":
            assert whole_png(path), f"{path.name}: not a whole PNG"
        elif path.suffix == ".json":
            json.loads(path.read_text())


@pytest.fixture
def photos(tmp_path):
    """24 real photos from the data set's test split (JPEGs), a folder run of about a second."""
    return photo_folder(tmp_path, 24)


@pytest.fixture
def many_photos(tmp_path):
    """160 of them: a run still at work well after its first outputs (24 take 0.3 s from the first output
    to the last on 2 idle EPYC cores), for the tests that stop it midway."""
    return photo_folder(tmp_path, 160)


def photo_folder(tmp_path, count: int):
    folder = tmp_path / "in"
    folder.mkdir()
    for source in sorted((DATA / "test").iterdir())[:count]:
        image = cv2.imread(str(source))
        cv2.imwrite(str(folder / f"{source.stem}.jpg"), cv2.resize(image, None, fx=2, fy=2))
    return folder


def detect_process(*overrides: str) -> subprocess.Popen:
    env = {**os.environ, "WANDB_SILENT": "true"}
    # Ctrl-C as a terminal sends it: a test run started in the background of a non-interactive shell
    # (CI scripts, nohup ... &) has SIGINT ignored, which the child would inherit and so never see it
    return subprocess.Popen([sys.executable, "scripts/detect.py", *overrides], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def whole_jsons(out: Path) -> list[Path]:
    """The JSON outputs written whole: pathlib's glob also matches a hidden temporary (.<name>.<hex>.part.json)."""
    return [p for p in out.glob("*.json") if not p.name.startswith(".")]


def kill_after_outputs(proc: subprocess.Popen, out: Path, count: int, sig=signal.SIGKILL) -> tuple[str, str]:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if out.is_dir() and len(whole_jsons(out)) >= count:
            break
        time.sleep(0.02)
    proc.send_signal(sig)
    return proc.communicate(timeout=60)


# --- the writer -----------------------------------------------------------------------------------

def test_a_write_cut_short_leaves_the_earlier_file_and_no_temporary(tmp_path):
    from keypoints.core.outputs import atomic_path, write_text
    target = tmp_path / "a.json"
    write_text(target, "earlier\n")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as temp, open(temp, "w") as f:
            f.write("half of a new")
            raise KeyboardInterrupt  # Ctrl-C (or any failure) in the middle of the write
    assert target.read_text() == "earlier\n" and list(tmp_path.iterdir()) == [target]


def test_a_link_at_the_target_is_replaced_not_written_through(tmp_path):
    from keypoints.core.outputs import write_text
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    (tmp_path / "a.json").symlink_to(precious)
    write_text(tmp_path / "a.json", "new\n")
    assert precious.read_text() == "keep me" and not (tmp_path / "a.json").is_symlink()


def test_a_write_to_a_full_disk_is_one_line_naming_the_file(tmp_path):
    """RLIMIT_FSIZE makes the OS refuse the write itself (EFBIG), as a full disk refuses with ENOSPC."""
    script = f"""
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
from keypoints.core.outputs import write_bytes, DiskFull
try:
    write_bytes({str(tmp_path / 'big.png')!r}, b"x" * 5000)
except DiskFull as e:
    print(e)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.stdout.startswith(f"{tmp_path / 'big.png'}: the file-size limit") and list(tmp_path.iterdir()) == []


# --- killed runs and resumes ------------------------------------------------------------------------

def test_a_killed_folder_run_leaves_only_whole_files_and_the_rerun_finishes_it(many_photos, tmp_path):
    out = tmp_path / "out"
    args = [f"input={many_photos}", f"output={out}", "batch_photos=2"]
    kill_after_outputs(detect_process(*args), out, 3)
    assert_only_whole_files(out, killed=True)
    finished = len(whole_jsons(out))
    assert 3 <= finished < 160
    proc = run_script("detect.py", *args)
    assert f"skipped {finished} of 160 file(s) already done" in proc.stdout
    assert_only_whole_files(out)
    assert len(list(out.glob("*.json"))) == len(list(out.glob("*.png"))) == 160


def test_a_killed_overwrite_rerun_never_destroys_a_good_earlier_output(photos, tmp_path):
    out = tmp_path / "out"
    args = [f"input={photos}", f"output={out}", "batch_photos=2"]
    run_script("detect.py", *args)
    for path in out.iterdir():
        os.utime(path, (1, 1))  # the earlier run's files, told apart by their time
    proc = detect_process(*args, "overwrite=true")
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not any(p.stat().st_mtime > 1 for p in out.glob("*.json")):
        time.sleep(0.02)
    proc.kill()
    proc.communicate(timeout=60)
    assert_only_whole_files(out, killed=True)
    outputs = [p for p in out.iterdir() if not p.name.startswith(".")]  # pathlib's glob would match hidden temp files
    assert sum(p.suffix == ".json" for p in outputs) == sum(p.suffix == ".png" for p in outputs) == 24


def test_a_rerun_redoes_half_done_photos_and_names_why(photos, tmp_path):
    out = tmp_path / "out"
    args = [f"input={photos}", f"output={out}"]
    run_script("detect.py", *args)
    names = sorted(p.stem for p in photos.iterdir())
    (out / f"{names[0]}.json").unlink()  # a drawing without its JSON: killed between the two
    (out / f"{names[1]}.png").rename(out / f".{names[1]}.png.1a2b3c4d.part.png")  # killed before the rename
    proc = run_script("detect.py", *args)
    assert f"{names[0]}.jpg: redone ({names[0]}.png is there without {names[0]}.json" in proc.stdout
    assert f"{names[1]}.jpg: redone" in proc.stdout and "left by an interrupted run" in proc.stdout
    assert "skipped 22 of 24 file(s) already done" in proc.stdout
    assert_only_whole_files(out)
    assert len(list(out.glob("*.json"))) == len(list(out.glob("*.png"))) == 24


def test_a_broken_output_is_named_and_kept(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    cut = cv2.imencode(".png", cv2.imread(str(PHOTOS / "obamas.jpg")))[1].tobytes()[:5000]
    (out / "obamas.png").write_bytes(cut)  # a truncated drawing (an older version, killed)
    proc = run_script("detect.py", f"input={PHOTOS / 'obamas.jpg'}", f"output={out}", check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "obamas.png: already exists and is not a whole output" in proc.stderr
    assert (out / "obamas.png").read_bytes() == cut


def test_ctrl_c_exits_130_with_only_whole_files(many_photos, tmp_path):
    out = tmp_path / "out"
    stdout, stderr = kill_after_outputs(proc := detect_process(f"input={many_photos}", f"output={out}", "batch_photos=2"),
                                        out, 2, signal.SIGINT)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and stderr.strip().splitlines()[-1].startswith("error: interrupted")
    assert_only_whole_files(out)
    run_script("detect.py", f"input={many_photos}", f"output={out}", "batch_photos=2")  # a drawing without its JSON is redone
    assert len(list(out.glob("*.json"))) == len(list(out.glob("*.png"))) == 160


def test_a_folder_that_is_its_own_output_leaves_out_earlier_outputs(tmp_path):
    folder = tmp_path / "both"
    folder.mkdir()
    for name in ("obamas.jpg", "mona_lisa.jpg"):
        (folder / name).write_bytes((PHOTOS / name).read_bytes())
    run_script("detect.py", f"input={folder}", f"output={folder}")
    proc = run_script("detect.py", f"input={folder}", f"output={folder}")
    assert "left out 4 file(s) an earlier run wrote there" in proc.stdout
    assert "skipped 2 of 2 file(s) already done" in proc.stdout
    assert sorted(p.name for p in folder.iterdir()) == sorted(  # the outputs, and the hidden record of what made them
        ["obamas.jpg", "obamas.png", "obamas.json", "mona_lisa.jpg", "mona_lisa.png", "mona_lisa.json", runner.MADE_LOG])


# --- a full disk, for real --------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB tmpfs (root can mount one; skipped elsewhere): writes past it fail with ENOSPC."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root)")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


def test_a_full_disk_stops_the_run_at_once_in_one_line(photos, small_disk):
    proc = run_script("detect.py", f"input={photos}", f"output={small_disk}", "batch_photos=4", check=False)
    assert proc.returncode == 2, proc.stdout
    assert proc.stderr.count("\n") == 1 and "no space left on the disk" in proc.stderr, proc.stderr
    assert len(proc.stdout.splitlines()) < 24  # stopped, not carried on through every photo
    assert_only_whole_files(small_disk)
    assert os.statvfs(small_disk).f_bfree * os.statvfs(small_disk).f_frsize < 1 << 20  # it was full


def test_a_video_on_a_full_disk_leaves_no_video(tmp_path, small_disk):
    clip = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10, (640, 480))
    rng = np.random.default_rng(0)
    for _ in range(40):  # noise: large frames even compressed
        writer.write(rng.integers(0, 255, (480, 640, 3), np.uint8))
    writer.release()
    proc = run_script("detect.py", f"input={clip}", f"output={small_disk}", "video.detect_every=10", check=False)
    assert proc.returncode == 2 and "no space left on the disk" in proc.stderr and proc.stderr.count("\n") == 1
    assert [p.name for p in small_disk.iterdir()] == []


def test_enospc_is_named_as_a_full_disk():
    from keypoints.core.outputs import DiskFull, as_disk_full
    error = as_disk_full(OSError(errno.ENOSPC, "No space left on device"), Path("out/a.png"))
    assert isinstance(error, DiskFull) and isinstance(error, KeypointsError)
    assert str(error).startswith("out/a.png: no space left on the disk")


# Writes that are not outputs: a server's log stream (appended as it runs), a benchmark's round trip
# through a video in a temporary folder, a teacher's list handed to a subprocess in a temporary folder,
# and the MediaPipe teacher, which runs in its own environment without keypoints.
NOT_OUTPUTS = {"src/keypoints/web/launch.py", "src/keypoints/benchmarks/video.py", "src/keypoints/teachers/others.py",
               "scripts/teachers/mediapipe_mesh.py"}
RAW_WRITE = r"imwrite\(|VideoWriter\(|json\.dump\(|(?<!outputs)\.write_text\(|(?<!outputs)\.write_bytes\(|to_csv\(|to_parquet\(|open\([^)]*[\"'][wax]b?[\"']|np\.save|\.savefig\(|torch\.save\(|onnx\.save\(|jit\.save\(|program\.save\("


def test_every_output_is_written_through_keypoints_outputs():
    """A writer that bypasses keypoints.core.outputs (or hands a library anything but the temporary path of
    outputs.atomic_path) would leave half a file when killed."""
    import re
    offenders = []
    for path in sorted([*(REPO / "src").rglob("*.py"), *(REPO / "scripts").rglob("*.py")]):
        name = str(path.relative_to(REPO))
        if name in NOT_OUTPUTS or name == "src/keypoints/core/outputs.py" or "/weights/" in name:
            continue
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if re.search(RAW_WRITE, line) and "temp" not in line and "atomic_path" not in lines[i - 1]:
                offenders.append(f"{name}:{i + 1}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_a_temporary_name_ends_in_no_output_suffix_and_fits_the_name_limit(tmp_path):
    """A user's `*.png` / `*.json` glob (or find -name) never takes a write in progress, and a photo named with
    250 characters still gets one (its temporary name cut to 255 bytes, as ext4 allows)."""
    long = "é" * 60 + "x" * 120 + ".json"  # 245 bytes: the old `.<name>.<hex>.part.json` passed 255
    for name in ("photo.png", "photo.json", long):
        temp = outputs.temporary_name(tmp_path / name)
        assert temp.name.startswith(".") and temp.name.endswith(".part") and len(temp.name.encode()) <= 255
        assert outputs.leftovers(tmp_path, name) == []
    outputs.write_json(tmp_path / long, {"faces": []})
    assert [p.name for p in tmp_path.iterdir()] == [long]
    with pytest.raises(RuntimeError), outputs.atomic_path(tmp_path / "clip.mp4", keep_suffix=True) as temp:
        assert temp.suffix == ".mp4" and temp.parent.name.endswith(".part")  # OpenCV's writer picks mp4 by the suffix
        temp.write_bytes(b"half")
        assert outputs.leftovers(tmp_path, "clip.mp4") == [temp.parent]
        raise RuntimeError("killed")
    assert sorted(p.name for p in tmp_path.iterdir()) == [long]


def test_a_record_that_cannot_be_written_leaves_no_drawing_without_it(tmp_path):
    """A record that is not JSON (an infinite point: detector.faces.keypoint_box.shift_y=1e300 once gave one,
    before its range was checked) fails the photo before its drawing is written: no PNG stands without its JSON."""
    class InfiniteFace:
        def to_json(self):
            return {"keypoints": [[float("inf"), 0.0]]}

    image = cv2.imread(str(PHOTOS / "obamas.jpg"))
    with pytest.raises(ValueError):
        runner._write_image(PHOTOS / "obamas.jpg", image, [InfiniteFace()], tmp_path / "obamas", lambda im, faces: im, True)
    assert list(tmp_path.iterdir()) == []


def test_a_second_run_into_a_folder_another_is_writing_is_refused_in_one_line(tmp_path):
    """One run at a time per output folder (a second one could delete or double the first's outputs): the
    lock is held for the run, released when it ends, a kill included (the kernel drops it with the process)."""
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; from keypoints.core import outputs\n"
                               f"with outputs.run_lock(Path({str(out)!r})):\n    print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        proc = run_script("detect.py", f"input={PHOTOS / 'obamas.jpg'}", f"output={out}", check=False)
        assert proc.returncode == 2 and proc.stderr == f"error: {out}: another keypoints run is writing into this folder; wait for it to finish, or choose another output=\n"
        assert not list(out.glob("*.png")) and not list(out.glob("*.json"))
    finally:
        holder.kill()
        holder.wait()
    assert run_script("detect.py", f"input={PHOTOS / 'obamas.jpg'}", f"output={out}").returncode == 0  # the killed holder let go
    assert (out / "obamas.json").is_file()


def test_a_rerun_redoes_what_another_model_setting_or_photo_made(tmp_path):
    """Resume keyed on what made each output (a hidden log beside them: the model file, the settings that
    change points or drawings, the photo's size and time): nothing stale is skipped; speed settings are not a change."""
    folder, out = tmp_path / "photos", tmp_path / "out"
    folder.mkdir()
    for path in sorted((DATA / "test").glob("*.jpg"))[:2]:
        shutil.copy(path, folder / path.name)
    run = lambda *extra: run_script("detect.py", f"input={folder}", f"output={out}", *extra).stdout
    run()
    assert "skipped 2 of 2 file(s) already done" in run("workers=1", "ort_threads=1")
    for change in ("draw_pose=true", "detector.faces.min_score=0.99", "backend=onnxruntime", "detector=haar"):
        again = run(change)
        assert again.count("redone (made by another model or other settings)") == 2, (change, again)
    first = sorted(folder.iterdir())[0]
    shutil.copy(PHOTOS / "obamas.jpg", first)  # another photo under the same name
    replaced = run("detector=haar")
    assert f"{first.name}: redone (the file changed since (size or time))" in replaced and "skipped 1 of 2" in replaced
    assert json.loads((out / f"{first.stem}.json").read_text())["width"] == cv2.imread(str(PHOTOS / "obamas.jpg")).shape[1]
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [runner.MADE_LOG]
