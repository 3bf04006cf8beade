"""Faces in motion (keypoints.inference.video): track ids across frames, the face stage skipped between
detections, ends and starts of tracks, smoothing, and the CLI on video files and streams."""

import functools
import http.server
import json
import re
import socket
import threading

import cv2
import numpy as np
import pytest
import torch

import keypoints
from conftest import PHOTOS, run_script
from keypoints.core.errors import KeypointsError
from keypoints.inference.video import load_tracker, torch_threads
from keypoints.benchmarks.video import clip_frame, jitter, noisy_still


@pytest.fixture(scope="module")
def detector():
    return keypoints.Detector()


@pytest.fixture(scope="module")
def obamas():
    return clip_frame(cv2.imread(str(PHOTOS / "obamas.jpg")), 640, 480)


@pytest.fixture(scope="module")
def mona():
    return clip_frame(cv2.imread(str(PHOTOS / "mona_lisa.jpg")), 640, 480)


def shifted(frame: np.ndarray, dx: float) -> np.ndarray:
    return cv2.warpAffine(frame, np.array([[1.0, 0, dx], [0, 1, 0]]), frame.shape[1::-1], borderMode=cv2.BORDER_REPLICATE)


def write(path, frames, fps=30):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, frames[0].shape[1::-1])
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def read(path) -> list[np.ndarray]:
    capture, frames = cv2.VideoCapture(str(path)), []
    ok, frame = capture.read()
    while ok:
        frames.append(frame)
        ok, frame = capture.read()
    return frames


class Counted:
    """A face stage that counts its calls."""

    def __init__(self, stage):
        self.stage, self.calls = stage, 0

    def __call__(self, image):
        self.calls += 1
        return self.stage(image)

    def __getattr__(self, name):
        return getattr(self.stage, name)


def test_two_faces_keep_their_ids_and_the_face_stage_runs_on_every_fifth_frame(detector, obamas, tmp_path, monkeypatch):
    frames = read(write(tmp_path / "pair.mp4", [shifted(obamas, 2 * i) for i in range(20)]))
    monkeypatch.setattr(detector, "faces", Counted(detector.faces))
    tracker = load_tracker(detector, detect_every=5)
    tracks = [tracker(frame, i / 30) for i, frame in enumerate(frames)]
    assert detector.faces.calls == 4  # frames 0, 5, 10, 15: the other 16 follow the faces from their keypoints
    assert all([f.track for f in faces] == [0, 1] for faces in tracks)
    for faces in tracks:  # each id stays on its own face: the one on the left is 0
        assert faces[0].box[0] < faces[1].box[0]
        assert all(f.pose is not None and f.score is not None for f in faces)


def test_a_face_that_leaves_ends_its_track_and_a_new_face_gets_a_new_id(detector, mona, obamas):
    """Mona Lisa slides out of the frame to the left, 12 px a frame, then the Obamas appear."""
    start, empty = shifted(mona, -220), np.full_like(mona, 128)  # her face near the left edge
    frames = [shifted(start, -12 * i) for i in range(12)] + [empty] * 3 + [obamas] * 3
    tracker = load_tracker(detector)
    ids = [[f.track for f in tracker(frame, i / 30)] for i, frame in enumerate(frames)]
    gone = ids.index([])
    assert ids[:gone] == [[0]] * gone and gone < 12  # followed, then ended while she left, not at the empty frames
    assert all(frame_ids == [] for frame_ids in ids[gone:15]) and ids[15:] == [[1, 2]] * 3


def test_smoothing_halves_the_jitter_of_a_still_photo_with_fresh_noise(detector, mona, tmp_path):
    frames = read(write(tmp_path / "still.mp4", noisy_still(mona, 30, 8, seed=0)))
    photos = np.stack([detector(frame)[0].keypoints for frame in frames])
    tracker = load_tracker(detector)  # smoothing is on by default for videos
    smooth = np.stack([tracker(frame, i / 30)[0].keypoints for i, frame in enumerate(frames)])
    assert jitter(smooth[8:]) < 0.5 * jitter(photos[8:])  # the first frames: the filter starts from the first


def test_photos_are_not_smoothed_and_have_no_track(detector, tmp_path):
    out = tmp_path / "out"
    run_script("detect.py", f"input={PHOTOS / 'mona_lisa.jpg'}", f"output={out}", f"hydra.run.dir={tmp_path / 'run'}")
    face = json.loads((out / "mona_lisa.json").read_text())["faces"][0]
    assert "track" not in face and set(face["pose"]) == {"yaw", "pitch", "roll"}
    np.testing.assert_allclose(face["keypoints"], detector(PHOTOS / "mona_lisa.jpg")[0].keypoints, atol=0.01)


def test_cli_writes_tracks_pose_and_time_for_each_frame_and_filter_takes_videos(obamas, tmp_path):
    (tmp_path / "in").mkdir()
    clip = write(tmp_path / "in" / "clip.mp4", [shifted(obamas, i) for i in range(8)], fps=10)
    run_script("detect.py", f"input={clip}", f"output={tmp_path / 'out'}", "draw_pose=true", "video.detect_every=3",
               f"hydra.run.dir={tmp_path / 'run'}")
    lines = [json.loads(line) for line in (tmp_path / "out" / "clip.jsonl").read_text().splitlines()]
    assert [line["frame"] for line in lines] == list(range(8))
    assert [line["time"] for line in lines] == pytest.approx([i / 10 for i in range(8)])
    assert all([f["track"] for f in line["faces"]] == [0, 1] and all(set(f["pose"]) == {"yaw", "pitch", "roll"}
               and np.shape(f["keypoints_3d"]) == (68, 3) for f in line["faces"]) for line in lines)
    assert len(read(tmp_path / "out" / "clip.mp4")) == 8
    run_script("filter.py", f"input={clip}", f"output={tmp_path / 'filtered'}", f"hydra.run.dir={tmp_path / 'run2'}")
    assert len(read(tmp_path / "filtered" / "clip.mp4")) == 8


def test_a_stream_url_is_opened_by_opencv(mona, tmp_path):
    """input=http://... : a video served on loopback, read as a stream (timed by the clock)."""
    (tmp_path / "served").mkdir()
    write(tmp_path / "served" / "live.mp4", [mona] * 6)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "served"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/live.mp4"
        run_script("detect.py", f"input={url}", f"output={tmp_path / 'out'}", f"hydra.run.dir={tmp_path / 'run'}", timeout=120)
    finally:
        server.shutdown()
        server.server_close()
    lines = [json.loads(line) for line in (tmp_path / "out" / "live.jsonl").read_text().splitlines()]
    assert len(lines) == 6 and lines[0]["video"] == url and all(f["track"] == 0 for line in lines for f in line["faces"])


@pytest.mark.parametrize("knobs, message", [
    ({"detect_every": 0}, "video.detect_every=0: must be a whole number >= 1"),
    ({"max_faces": 0}, "video.max_faces=0: must be a whole number >= 1"),
    ({"match_iou": 1.5}, "video.match_iou=1.5: must be an IoU in (0, 1]"),
    ({"smoothing": {"min_cutoff": 0}}, "video.smoothing.min_cutoff=0: must be a number > 0.0"),
    ({"smoothing": {"enabled": "maybe"}}, "video.smoothing.enabled='maybe': must be true or false"),
    ({"smoothing": {"gain": 2}}, "video.smoothing.gain: unknown knob (one of enabled, min_cutoff, beta, d_cutoff)"),
])  # fmt: skip
def test_a_bad_tracker_knob_is_one_line_naming_it(detector, knobs, message):
    with pytest.raises(KeypointsError, match=re.escape(message)):
        load_tracker(detector, **knobs)


def test_a_bad_video_knob_or_a_source_that_does_not_open_is_one_line_from_the_cli(tmp_path):
    """(FFmpeg prints its own line about a refused connection before ours.)"""
    proc = run_script("detect.py", f"input={PHOTOS / 'mona_lisa.jpg'}", f"output={tmp_path / 'out'}", "video.detect_every=0",
                      f"hydra.run.dir={tmp_path / 'run'}", check=False)
    assert proc.returncode == 2 and proc.stderr.strip() == "error: video.detect_every=0: must be a whole number >= 1"
    proc = run_script("detect.py", "input=63", f"output={tmp_path / 'out'}", f"hydra.run.dir={tmp_path / 'run'}", check=False)
    assert proc.returncode == 2 and proc.stderr.strip() == "error: input=63: camera could not be opened or gave no frame"
    with socket.socket() as closed:  # a loopback port nothing listens on
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/live.mp4"
    proc = run_script("detect.py", f"input={url}", f"output={tmp_path / 'out'}", f"hydra.run.dir={tmp_path / 'run'}", check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == f"error: input={url}: stream could not be opened or gave no frame"


def test_a_video_runs_on_the_threads_its_knob_says_and_gives_them_back():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_a_cut_short_video_is_said_and_ffmpegs_own_lines_stay_out(obamas, tmp_path):
    """Run as a shell runs it: FFmpeg writes to the process's stderr itself, around Python's."""
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, obamas.shape[1::-1])
    for i in range(12):
        writer.write(shifted(obamas, i))
    writer.release()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])  # a download that stopped half way
    proc = run_script("detect.py", f"input={cut}", f"output={tmp_path / 'out'}", process=True)
    decoded = int(re.search(r"cut.avi: (\d+) frame\(s\)", proc.stdout).group(1))
    assert 0 < decoded < 12 and proc.stderr.strip().splitlines() == [
        f"warning: {cut}: only {decoded} of the 12 frames its header declares could be decoded (the file is cut short or damaged); "
        "the outputs hold those"]
    assert len(read(tmp_path / "out" / "cut.mp4")) == decoded
    (tmp_path / "empty.mp4").write_bytes(b"")
    proc = run_script("detect.py", f"input={tmp_path / 'empty.mp4'}", f"output={tmp_path / 'none'}", process=True, check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'empty.mp4'}: not a readable video (empty, corrupt or an unsupported codec)"]
    assert not (tmp_path / "none").exists()  # a run that wrote nothing leaves no folder
