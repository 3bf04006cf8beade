"""The body of detect.py and filter.py: every image of an input (an image, a folder, a video, a
webcam or a stream) through the Detector, with what `render` draws written beside a JSON record
(docs/JSON.md). Video frames go through keypoints.inference.video: faces tracked and smoothed over time.

A folder goes through in batches of `batch_photos`: the faces of all photos of a batch share each
network pass, and the next batch is decoded in a background thread while this one runs, so the
CPU does not wait on the disk.
"""

import hashlib
import json
import os
from contextlib import ExitStack, contextmanager, suppress
import re
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable
from urllib.parse import unquote

import cv2
import numpy as np
from omegaconf import OmegaConf

from keypoints.core.checks import BOOLEAN, one_of, optional, whole
from keypoints.inference.config import provenance
from keypoints.inference.detector import Detector, Face
from keypoints.core.errors import KeypointsError
from keypoints.core.io import MAX_PIXELS, READABLE_SUFFIXES, TooManyPixels, image_pixels, not_a_file, opencv_quiet, read_image
from keypoints.core import outputs
from keypoints.core.outputs import DiskFull, atomic_path, guard_outputs, leftovers
from keypoints.inference.video import load_tracker, torch_threads, video_config

RULES = {  # keypoints/conf/detect.yaml and filter.yaml (the detector's own: keypoints.inference.config)
    "batch_photos": whole(1),
    "overwrite": BOOLEAN,
    "draw_pose": BOOLEAN,
}
ENGINE_RULES = {  # the `engine` group (keypoints/conf/engine/): engine=ray runs keypoints.scale
    "engine.name": one_of("local", "ray"),
    "engine.actors": optional(whole(1)),
    "engine.shard_photos": whole(1),
    "engine.address": optional(((lambda v: isinstance(v, str) and v.strip() != ""), "a Ray address (auto, ray://host:10001)")),
    "engine.column": ((lambda v: isinstance(v, str) and v != ""), "a column name"),
}
# FFmpeg's own log lines ("moov atom not found", "[mjpeg @ 0x...] overread 8") go straight to stderr above
# the one line that says what is wrong with the video; OpenCV reads this when it first opens a capture.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET; set it to 24 (warnings) to see them
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
Render = Callable[[np.ndarray, list[Face]], np.ndarray]
# The command's way to its Detector from the composed config and ckpt_path= (keypoints.detect.load_detector,
# which reads a checkpoint's torch side too: a layer above this wing, so the command hands it in).
LoadDetector = Callable[..., Detector]


def record(faces: list[Face], pixels: np.ndarray, **source) -> dict:
    """The JSON record of one image (or video frame); `source` says which (image=..., or video=..., frame=...)."""
    height, width = pixels.shape[:2]
    return {**source, "width": width, "height": height, "faces": [face.to_json() for face in faces]}


def detect_inputs(cfg, render: Render, load_detector: LoadDetector, write_json: bool = True) -> None:
    """Writes `<name>.png` (and `<name>.json`) per image, `<name>.mp4` (and `.jsonl`) per video into
    `cfg.output`; `<name>` is the file's stem, or its full name when two files share a stem. In a
    folder, a file that fails (whatever OpenCV or the model raise on it) is reported and skipped,
    and the run fails at the end with a summary. Before any work: no output may overwrite an input,
    nor (without `overwrite=true`) any file that is already there. A run that fails before writing
    anything leaves no output folder behind."""
    out = checked_output(cfg.output)
    made = not out.exists() and not out.is_symlink()
    try:
        with outputs.run_lock(out):  # one run at a time into a folder
            _detect_inputs(cfg, render, load_detector, write_json, out)
    except BaseException:
        if made:
            with suppress(OSError):
                out.rmdir()  # only if empty: whatever was written stays
        raise


def _detect_inputs(cfg, render: Render, load_detector: LoadDetector, write_json: bool, out: Path) -> None:
    spec = checked_input(cfg.input)
    overwrite = cfg.overwrite
    stream = live_source(spec)
    if stream is not None:  # a webcam or a URL: nothing on disk to list or to protect
        target = out / _stream_name(stream)
        detector = load_detector(cfg, cfg.ckpt_path)
        guard_outputs(out, [], [Path(f"{target}{s}") for s in _suffixes(True, write_json)], overwrite)
        _video(stream, target, detector, render, write_json, cfg.get("video") or {}, detector.max_pixels)
        return
    source = Path(spec)
    if not source.exists():
        raise KeypointsError(f"{source}: input not found (input=an image, a folder of images, a video file, "
                             "a webcam's number or a stream's URL)")
    files, skipped = [source], []
    if source.is_dir():
        files, skipped = folder_listing(source)
        files, earlier = without_earlier_outputs(files)
        files, others = media_files(files)
        left_out(source, earlier, "an earlier run wrote there")
        left_out(source, others, "that are not images or videos by their names")
        if not files:
            raise KeypointsError(f"{source}: folder has no images or videos (input=an image, a folder of images or a video file)"
                                 + "".join(f"; {p.name} is {kind}" for p, kind in skipped[:5]))
    elif not_a_file(source):  # a FIFO or a device would block the reader forever
        raise KeypointsError(f"{source}: {not_a_file(source)}, not a file (input=an image, a folder of images or a video file)")
    names, targets = output_names(files, out, write_json)
    detector = load_detector(cfg, cfg.ckpt_path)  # its knobs are checked before anything is written
    made_by = made_key(cfg, write_json)
    done, redo = resume_plan(targets, overwrite, read_made(out), made_by)
    guard_outputs(out, files, [t for ts in targets.values() for t in ts], overwrite,
                  replaceable={t for p in done | {p for p, _ in redo} for t in targets[p]})
    for path, why in redo:
        for temp in (t for target in targets[path] for t in leftovers(out, target.name)):
            outputs.remove(temp)
        print(f"{path.name}: redone ({why})")
    if done:
        print(f"skipped {len(done)} of {len(files)} file(s) already done in {out} (overwrite=true redoes them)")
    files = [p for p in files if p not in done]
    failures = []

    def fail(path: Path, error: Exception) -> None:
        if isinstance(error, DiskFull):  # every later file would fail the same way
            raise error
        error = failure(path, error)
        if not source.is_dir():
            raise error
        print(f"error: {error}", file=sys.stderr)
        reason = str(error).removeprefix(f"{path}: ").split(" (")[0]  # the full message is printed above
        failures.append(f"{path.name} ({reason[:80]})")

    for path, kind in skipped:  # named, never opened: reading a FIFO or a device could block forever
        fail(path, KeypointsError(f"{path}: {kind}, not a file (skipped unopened)"))
    photos = [p for p in files if not is_video(p)]
    max_pixels = detector.max_pixels
    for batch in _decoded_batches(photos, cfg.batch_photos, max_pixels):
        good = []
        for path, image in batch:
            if isinstance(image, Exception):
                fail(path, image)
            else:
                good.append((path, image))
        for (path, image), faces in zip(good, detect_each(detector, good, fail)):
            if faces is None:
                continue
            try:
                _write_image(path, image, faces, out / names[path], render, write_json)
                note_made(out, path, made_by)
            except Exception as e:  # noqa: BLE001 - one file's failure must not sink the folder
                fail(path, e)
    for path in filter(is_video, files):
        try:
            _video(path, out / names[path], detector, render, write_json, cfg.get("video") or {}, max_pixels)
            note_made(out, path, made_by)
        except Exception as e:  # noqa: BLE001
            fail(path, e)
    if failures:
        total = len(files) + len(skipped)
        shown = ", ".join(failures[:5]) + (f" and {len(failures) - 5} more (each named above)" if len(failures) > 5 else "")
        raise KeypointsError(f"{len(failures)} of {total} files failed: {shown}")


def without_earlier_outputs(files: list[Path]) -> tuple[list[Path], list[Path]]:
    """A folder's files less the outputs an earlier run wrote into it (input=D output=D): a JSON
    record (docs/JSON.md) and the drawing beside it, a video's .jsonl and the drawn .mp4 beside it."""
    earlier = set()
    for path in files:
        if path.suffix in (".json", ".jsonl") and _is_record(path):
            earlier |= {path, path.with_suffix(".png" if path.suffix == ".json" else ".mp4")}
    return [p for p in files if p not in earlier], sorted(p for p in files if p in earlier)


# What made each input's outputs, a line per input done (note_made), hidden beside them: resume compares it
MADE_LOG = ".keypoints-made.log"
# The settings beside the detector's that change what a run draws or writes
RENDER_KEYS = ("draw_pose", "overlay", "kind", "overlay_dir", "overlay_files", "placements", "video")


def made_key(cfg, write_json: bool) -> str:
    """What makes this run's outputs, as one short hash: the model and detector settings
    (keypoints.inference.config.provenance), what the command draws and whether it writes records."""
    render = {k: OmegaConf.to_container(cfg[k], resolve=True) if OmegaConf.is_config(cfg[k]) else cfg[k]
              for k in RENDER_KEYS if k in cfg}
    made = json.dumps([provenance(cfg, cfg.ckpt_path), render, write_json], sort_keys=True, default=str)
    return hashlib.sha256(made.encode()).hexdigest()[:16]


def note_made(out: Path, path: Path, made_by: str) -> None:
    """`path`'s outputs are whole in `out`, made by `made_by` from the file as it is now."""
    outputs.append_line(out / MADE_LOG, json.dumps({"input": str(path), "made_by": made_by, "identity": outputs.file_identity(path)}))


def read_made(out: Path) -> dict | None:
    """The latest MADE_LOG line of each input; None where there is no log (outputs of a version before it)."""
    try:
        lines = (out / MADE_LOG).read_text(errors="replace").splitlines()
    except OSError:
        return None
    made = {}
    for line in lines:
        try:
            entry = json.loads(line)
            made[entry["input"]] = entry
        except (ValueError, KeyError, TypeError):
            continue  # a line torn by a kill: that input is redone
    return made


def resume_plan(targets: dict[Path, list[Path]], overwrite: bool, made: dict | None = None,
                made_by: str | None = None) -> tuple[set[Path], list[tuple[Path, str]]]:
    """Which inputs an earlier run finished (their outputs all there and whole, made by these settings
    from the file as it is: skipped) and which to redo, with the reason: made by another model or other
    settings, from a file since replaced (MADE_LOG), or left half-done: a drawing without its JSON
    record, a record without its drawing, a temporary file of an interrupted write. An output that is
    there but not whole (not one this version writes: it writes atomically) is left to guard_outputs,
    which names it. `made` None (no log: an older version's outputs): whole outputs are done."""
    done, redo = set(), []
    for path, wanted in targets.items():
        temps = [t for target in wanted for t in leftovers(target.parent, target.name)]
        there = [t for t in wanted if t.exists() or t.is_symlink()]
        whole = [t for t in there if not t.is_symlink() and _is_whole(t, path)]
        if overwrite:
            if temps:
                redo.append((path, f"overwrite=true; {temps[0].name} was left by an interrupted run"))
            continue
        if len(whole) == len(wanted) and not temps:
            changed = _changed(path, made, made_by)
            if changed:
                redo.append((path, changed))
            else:
                done.add(path)
        elif there and len(whole) < len(there):
            continue  # not whole: guard_outputs refuses it by name
        elif temps:
            redo.append((path, f"{temps[0].name} was left by an interrupted run"))
        elif whole:
            missing = [t.name for t in wanted if t not in whole]
            redo.append((path, f"{whole[0].name} is there without {missing[0]}: an interrupted run"))
    return done, redo


def _changed(path: Path, made: dict | None, made_by: str | None) -> str | None:
    """Why `path`'s whole outputs are stale, or None."""
    if made is None:
        return None
    entry = made.get(str(path))
    if entry is None:
        return "no record of what made its outputs"
    if entry.get("made_by") != made_by:
        return "made by another model or other settings"
    if entry.get("identity") != outputs.file_identity(path):
        return "the file changed since (size or time)"
    return None


def _is_record(path: Path) -> bool:
    """A JSON record runner wrote (docs/JSON.md): an object with the image or video it is of and its faces."""
    try:
        if path.stat().st_size > 64 * 2**20:
            return False
        with open(path, "rb") as f:
            first = json.loads(f.readline() if path.suffix == ".jsonl" else f.read())
    except (OSError, ValueError):
        return False
    return isinstance(first, dict) and "faces" in first and ("image" in first or "video" in first)


def _is_whole(output: Path, source: Path) -> bool:
    """An output this version wrote whole: a PNG through its IEND chunk, a JSON record of `source`, a
    JSON-lines file whose last line is a record, an MP4 OpenCV can open."""
    try:
        if output.suffix == ".png":
            with open(output, "rb") as f:
                head = f.read(8)
                f.seek(max(0, output.stat().st_size - 12))
                return head == b"\x89PNG\r\n\x1a\n" and f.read(12) == b"\0\0\0\0IEND\xaeB`\x82"
        if output.suffix == ".json":
            record_ = json.loads(output.read_text())
            return isinstance(record_, dict) and Path(str(record_.get("image"))).name == source.name
        if output.suffix == ".jsonl":
            last = output.read_bytes().rstrip(b"\n").rsplit(b"\n", 1)[-1]
            return isinstance(json.loads(last), dict)
        if output.suffix == ".mp4":
            capture = _open(str(output))
            try:
                return capture.isOpened() and capture.get(cv2.CAP_PROP_FRAME_COUNT) > 0
            finally:
                capture.release()
    except (OSError, ValueError):
        return False
    return False


INPUT_HELP = "an image, a folder of images, a video file, a webcam's number or a stream's URL"


def checked_input(spec) -> int | str:
    """`input=` as one source, or one line saying what is wrong with it: empty (Hydra's `input=` is
    the empty string, which as a path would be the current folder), a list, a boolean, a negative
    camera number (OpenCV crashes on one). A file:// URL is its path, so the output guards hold."""
    if isinstance(spec, bool):
        raise KeypointsError(f"input={str(spec).lower()}: not a source ({INPUT_HELP})")
    if isinstance(spec, (list, tuple)) or type(spec).__name__ == "ListConfig":
        raise KeypointsError(f"input={list(spec)}: one source a run ({INPUT_HELP}; many photos: a folder of them)")
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        raise KeypointsError(f"input: required ({INPUT_HELP})")
    if isinstance(spec, float) or (isinstance(spec, int) and spec < 0) \
            or (isinstance(spec, str) and re.fullmatch(r"-\d+", spec.strip()) and not Path(spec).exists()):
        raise KeypointsError(f"input={spec}: not a camera number (0, 1, ... as the system counts webcams) nor a path")
    if isinstance(spec, str) and spec.lower().startswith("file://"):
        return unquote(spec[len("file://"):])
    return spec


def checked_output(spec) -> Path:
    if spec is None or not str(spec).strip():
        raise KeypointsError("output: empty (output=a folder to write into)")
    return Path(spec)


def live_source(spec) -> int | str | None:
    """A webcam (its number, as OpenCV counts them: input=0) or a stream's URL (rtsp://, http://...)
    that cv2.VideoCapture opens; None for anything else (a path). An existing file always wins."""
    if isinstance(spec, bool) or Path(str(spec)).exists():
        return None
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
        return int(spec)
    return spec if isinstance(spec, str) and re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", spec) else None


def _stream_name(stream: int | str) -> str:
    """The output stem of a webcam (camera0) or a stream (the last part of its URL's path, or "stream")."""
    if isinstance(stream, int):
        return f"camera{stream}"
    path = stream.split("://", 1)[1].split("?")[0].rstrip("/")
    name = Path(path).stem if "/" in path else ""
    return re.sub(r"[^\w.-]", "_", name) or "stream"


def output_names(files: list[Path], out: Path, write_json: bool) -> tuple[dict[Path, str], dict[Path, list[Path]]]:
    """Each file's output name (its stem; its full name when two files share a stem, or when a stem
    and another's full name would give the same output: a.png and a.png.png) and its output files.
    Names are compared case-insensitively, as macOS and Windows file systems do; files whose outputs
    still coincide are refused before work."""
    stems = Counter(p.stem.casefold() for p in files)
    names = {p: p.stem if stems[p.stem.casefold()] == 1 else p.name for p in files}
    while True:
        targets = {p: [out / f"{names[p]}{suffix}" for suffix in _suffixes(is_video(p), write_json)] for p in files}
        owners = {}
        for p, ts in targets.items():
            for t in ts:
                owners.setdefault(t.name.casefold(), []).append(p)
        shared = {p for ps in owners.values() if len(ps) > 1 for p in ps if names[p] != p.name}
        if not shared:
            break
        names.update({p: p.name for p in shared})
    clash = next((ps for ps in owners.values() if len(ps) > 1), None)
    if clash:
        raise KeypointsError(f"{clash[0]} and {clash[1].name}: their outputs would have the same name (names that differ only "
                             "in case); rename one, or run them in separate folders")
    return names, targets


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def _suffixes(video: bool, write_json: bool) -> list[str]:
    if video:
        return [".mp4"] + ([".jsonl"] if write_json else [])
    return [".png"] + ([".json"] if write_json else [])


def failure(path, error: Exception) -> KeypointsError:
    """The one line a photo that failed gets, whatever OpenCV or the model raised: the local engine
    prints it, the Ray engine writes it in the photo's row (keypoints.scale)."""
    if isinstance(error, KeypointsError):
        return error
    first = (str(error).strip().splitlines() or [""])[-1][:160]
    return KeypointsError(f"{path}: could not be processed ({type(error).__name__}: {first})")


def detect_each(detector: Detector, good: list, fail) -> list:
    """The faces of a batch of (key, image) in one pass; if that pass fails, each photo alone, so the
    failure is pinned on the photo that caused it (`fail(key, error)`, None for it) and the others still
    get their faces. Both engines' batches go through here."""
    try:
        return detector.detect_many([image for _, image in good])
    except Exception:  # noqa: BLE001
        found = []
        for key, image in good:
            try:
                found.append(detector(image))
            except Exception as e:  # noqa: BLE001
                fail(key, e)
                found.append(None)
        return found


def media_files(files: list[Path]) -> tuple[list[Path], list[Path]]:
    """(the files a folder run takes: images and videos by their suffix, and files without one; the others,
    left out unopened, as image tools do: a labels.csv or notes.txt beside the photos). A file named as an
    image that does not decode stays a failure."""
    def wanted(p: Path) -> bool:
        return not p.suffix or p.suffix.lower() in READABLE_SUFFIXES or is_video(p)
    return [p for p in files if wanted(p)], [p for p in files if not wanted(p)]


def left_out(source: Path, files: list, why: str) -> None:
    """One line naming the files of a folder a run leaves out, and why."""
    if files:
        names = ", ".join(Path(p).name for p in files[:3]) + (", ..." if len(files) > 3 else "")
        print(f"{source}: left out {len(files)} file(s) {why} ({names})")


def folder_files(folder: Path) -> list[Path]:
    """The files of a folder (and links to files), sorted, hidden ones left out."""
    return folder_listing(folder)[0]


def folder_listing(folder: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """folder_files, and the entries that are neither files nor folders with what each is (a FIFO,
    a socket, a device, a broken link, a symlink loop), for the caller to name. Subfolders and
    hidden entries are left out."""
    files, skipped = [], []
    for path in sorted(p for p in Path(folder).iterdir() if not p.name.startswith(".")):
        kind = not_a_file(path)
        if kind is None:
            files.append(path)
        elif kind != "a folder":
            skipped.append((path, kind))
    return files, skipped


def _read(path: Path, max_pixels: int):
    try:
        return read_image(path, max_pixels)
    except Exception as e:  # noqa: BLE001 - a decoder's own error stays this file's
        return failure(path, e)


def _decoded_batches(paths: list[Path], size: int, max_pixels: int):
    """Batches of (path, image or the error of reading it); the next batch is decoded in a
    background thread while the caller works on this one (OpenCV's decoder releases the GIL).
    A batch holds at most `size` photos and, by their headers, at most `max_pixels` pixels
    (a single photo is bounded by read_image), so a folder of huge photos stays within memory."""
    chunks, chunk, pixels = [], [], 0
    for path in paths:
        n = image_pixels(path) or 0
        if chunk and (len(chunk) == size or pixels + n > max_pixels):
            chunks.append(chunk)
            chunk, pixels = [], 0
        chunk.append(path)
        pixels += n
    chunks += [chunk] if chunk else []
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(lambda c: [(p, _read(p, max_pixels)) for p in c], chunks[0]) if chunks else None
        for i in range(len(chunks)):
            batch = pending.result()
            if i + 1 < len(chunks):
                pending = pool.submit(lambda c: [(p, _read(p, max_pixels)) for p in c], chunks[i + 1])
            yield batch


def _write_image(path: Path, image: np.ndarray, faces: list[Face], target: Path, render: Render, write_json: bool) -> None:
    # the record first: one that cannot be written (a setting that made a point infinite) fails before
    # the drawing is; the record is renamed into place last: a photo with its record is finished (resume_plan)
    text = outputs.json_text(record(faces, image, image=str(path))) if write_json else None
    outputs.write_image(f"{target}.png", render(image, faces))
    if text is not None:
        outputs.write_text(f"{target}.json", text)
    print(f"{path.name}: {len(faces)} face(s)")


def _open(source: int | str) -> cv2.VideoCapture:
    """cv2.VideoCapture without OpenCV's warnings about each backend it tried: a source that does not
    open is told in one line by the caller."""
    with opencv_quiet(keep_errors=True):
        return cv2.VideoCapture(source)


def _video(source: Path | int | str, target: Path, detector: Detector, render: Render, write_json: bool,
           knobs: dict, max_pixels: int = MAX_PIXELS) -> None:
    """`<target>.mp4` with every frame rendered, and one JSON line per frame in `<target>.jsonl`, each
    written under a temporary name and renamed when the video ends (keypoints.core.outputs): a killed run
    leaves no half video. Frames above `max_pixels` are refused by the video's declared size, before
    one is decoded. Faces are tracked and smoothed (keypoints.inference.video; `knobs`: the `video` group). A
    file's frames are timed by their number and frame rate; a live source's by the clock, and Ctrl-C
    ends it cleanly. A frame whose size differs from the first is drawn scaled to the video's size
    (an MP4 has one), its JSON line keeps its own size, and one line says so."""
    live = not isinstance(source, Path)
    checked = video_config(**knobs)
    max_frames, tracker = checked["max_frames"], load_tracker(detector, **knobs)
    capture = _open(source if live else str(source))
    name = f"input={source}" if live else str(source)
    declared = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)) * int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) if capture.isOpened() else 0
    if declared > max_pixels:
        capture.release()
        raise TooManyPixels(f"{name}: frames of {declared / 1e6:.3g} megapixels, above the limit of {max_pixels / 1e6:g} "
                            "(max_megapixels=)")
    ok, frame = capture.read() if capture.isOpened() else (False, None)
    if not ok:
        capture.release()
        if live:
            raise KeypointsError(f"input={source}: {'camera' if isinstance(source, int) else 'stream'} could not be opened or gave no frame")
        raise KeypointsError(f"{source}: not a readable video (empty, corrupt or an unsupported codec)")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    declared_frames = 0 if live else int(capture.get(cv2.CAP_PROP_FRAME_COUNT))  # 0 or less: the container does not say
    height, width = frame.shape[:2]
    if width * height > max_pixels:  # a source that declared no size
        capture.release()
        raise TooManyPixels(f"{name}: frames of {width * height / 1e6:.3g} megapixels, above the limit of "
                            f"{max_pixels / 1e6:g} (max_megapixels=)")
    index, start, resized = 0, time.monotonic(), 0
    with ExitStack() as stack:  # exits in reverse: the lines closed, the .mp4 renamed, the .jsonl (the marker) last
        lines_temp = stack.enter_context(atomic_path(f"{target}.jsonl")) if write_json else None
        video_temp = stack.enter_context(atomic_path(f"{target}.mp4", keep_suffix=True))  # OpenCV picks mp4 by it
        writer = cv2.VideoWriter(str(video_temp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
        if not writer.isOpened():
            capture.release()
            raise KeypointsError(f"{target}.mp4: OpenCV cannot write an mp4v video of {width} x {height} here")
        lines = stack.enter_context(open(lines_temp, "x")) if lines_temp else None
        try:
            with torch_threads(checked["threads"]), opencv_quiet(keep_errors=True):
                while ok and (max_frames is None or index < max_frames):
                    t = time.monotonic() - start if live else index / fps
                    if frame.shape[:2] != (height, width):
                        resized += 1
                        if resized == 1:
                            print(f"{name}: frame {index} is {frame.shape[1]} x {frame.shape[0]}, not {width} x {height}: "
                                  "drawn scaled to the video's size; its JSON line keeps its own size")
                    faces = tracker(frame, t)
                    drawn = render(frame, faces)
                    writer.write(drawn if drawn.shape[:2] == (height, width) else cv2.resize(drawn, (width, height)))
                    if lines:
                        lines.write(json.dumps(record(faces, frame, video=str(source), frame=index, time=round(t, 3))) + "\n")
                    index += 1
                    ok, frame = capture.read()
        except KeyboardInterrupt:
            if not live:
                raise
        finally:
            capture.release()
            writer.release()
        _check_video(video_temp, index, Path(f"{target}.mp4"))
    print(f"{source if live else source.name}: {index} frame(s)")
    # A count the container estimates from its duration can be one off; fewer than that is a file cut short.
    if (max_frames is None or index < max_frames) and index < declared_frames - 1:
        print(f"warning: {source}: only {index} of the {declared_frames} frames its header declares could be decoded "
              "(the file is cut short or damaged); the outputs hold those", file=sys.stderr)


def _check_video(path: Path, frames: int, target: Path) -> None:
    """OpenCV's VideoWriter drops a failed write without a word: the finished file is opened again and
    its frames counted, so a full disk (or any short write) stops the run instead of being renamed."""
    capture = _open(str(path))
    written = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
    capture.release()
    if written < frames:
        free = os.statvfs(path.parent).f_bavail * os.statvfs(path.parent).f_frsize
        if free < 1 << 20:
            raise DiskFull(f"{target}: no space left on the disk; the run stopped, nothing partial was left "
                           "(free some space and rerun to resume)")
        raise KeypointsError(f"{target}: OpenCV wrote {written} of {frames} frames; nothing was kept")
