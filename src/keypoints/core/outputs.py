"""Writing an output file whole or not at all.

Every file the project writes goes to a hidden temporary name in the same folder (`.<name>.<random>.part`,
with no output suffix, so that no tool looking for outputs by suffix, `*.png` or `*.json`, takes it; cut
to fit the 255-byte name limit), is flushed and fsync'ed, then renamed over its target with os.replace
(atomic on one file system). A run killed at any moment leaves the earlier file or the new one, never
half of either; a leftover temporary file is hidden (folder listings leave it out) and named by the next
run (`leftovers`). A writer that picks its format by the suffix (OpenCV's VideoWriter) writes inside a
hidden temporary folder of that name instead (`keep_suffix`).

A full disk (or a quota, or a file-size limit) ends the write as `DiskFull`, a KeypointsError naming the
file, with the temporary file removed: callers let it stop the run rather than go on to the next photo.
"""

import errno
import fcntl
import json
import os
import secrets
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from keypoints.core.errors import KeypointsError

PART = ".part"  # the marker of a temporary name: `.<target name>.<random>.part`
NAME_MAX = 255  # bytes in a file name (ext4, XFS, Btrfs, tmpfs)
NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
LOCK = ".keypoints.lock"  # held by the run writing into a folder (run_lock); hidden, so no listing takes it


class DiskFull(KeypointsError):
    """No room left for an output (ENOSPC, a quota, or a file-size limit): the run stops here."""


def _head(target_name: str) -> str:
    """`target_name` as the head of its temporary names, cut so that `.<head>.<8 hex>.part` fits NAME_MAX."""
    room = NAME_MAX - len(f"..{'0' * 8}{PART}")
    return target_name.encode()[:room].decode(errors="ignore")


def temporary_name(target: Path) -> Path:
    """A hidden name beside `target` that ends in `.part`, not in the target's suffix."""
    return target.with_name(f".{_head(target.name)}.{secrets.token_hex(4)}{PART}")


def leftovers(folder: Path, target_name: str) -> list[Path]:
    """Temporary files (or folders) an interrupted run left for `target_name` in `folder`."""
    return sorted(folder.glob(f".{_glob_escape(_head(target_name))}.*{PART}*"))  # *: also .part.png, as versions before 2026-12-07 named them


def remove(temp: Path) -> None:
    """A leftover of `leftovers`, file or folder, gone."""
    if temp.is_dir() and not temp.is_symlink():
        shutil.rmtree(temp, ignore_errors=True)
    else:
        temp.unlink(missing_ok=True)


@contextmanager
def atomic_path(target: str | Path, keep_suffix: bool = False):
    """Yields a temporary path for the caller (or a library: OpenCV's VideoWriter) to write; on a
    clean exit it is fsync'ed and renamed over `target`, on any exception (Ctrl-C too) removed.
    `keep_suffix`: the path ends in the target's suffix, inside a hidden temporary folder."""
    target = Path(target)
    temp = temporary_name(target)
    path = temp / f"output{target.suffix}" if keep_suffix else temp
    try:
        if keep_suffix:
            temp.mkdir()
        yield path
        _sync(path)
        os.replace(path, target)  # replaces a link at `target` itself, never the file it points at
        _sync_folder(target.parent)
    except BaseException as e:
        path.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise as_disk_full(e, target) from None
        raise
    finally:
        if keep_suffix:
            remove(temp)


def write_bytes(target: str | Path, data: bytes) -> None:
    """`data` as the whole of `target`, atomically (see the module's docstring)."""
    with atomic_path(target) as temp, open(temp, "xb") as f:
        f.write(data)
        f.flush()


def write_text(target: str | Path, text: str) -> None:
    write_bytes(target, text.encode())


def json_text(value, **dumps) -> str:
    """`value` as the JSON this project writes: strict (a NaN or an infinity is a ValueError, not `NaN`)."""
    return json.dumps(value, **{"allow_nan": False, **dumps}) + "\n"


def write_json(target: str | Path, value, **dumps) -> None:
    write_text(target, json_text(value, **dumps))


def write_image(target: str | Path, picture: np.ndarray) -> None:
    """`picture` encoded in memory by its target's suffix (.png, .jpg, ...), then written atomically:
    a write error is then the OS's (a full disk says so), not a codec's half-written file."""
    ok, encoded = cv2.imencode(Path(target).suffix or ".png", picture)
    if not ok:
        raise KeypointsError(f"{target}: OpenCV could not encode a {picture.shape} picture as {Path(target).suffix}")
    write_bytes(target, encoded.tobytes())


def append_line(target: str | Path, line: str) -> None:
    """One line at the end of a log (`line` without its newline): a log only this run writes (run_lock),
    read back line by line, a torn last line ignored."""
    try:
        with open(target, "a") as f:
            f.write(line + "\n")
    except OSError as e:
        raise as_disk_full(e, Path(target)) from None


def as_disk_full(error: OSError, target: Path) -> Exception:
    """A full disk as DiskFull naming `target`; any other OSError as it was."""
    if error.errno in NO_SPACE:
        why = "the file-size limit (ulimit -f) was reached" if error.errno == errno.EFBIG else "no space left on the disk"
        return DiskFull(f"{target}: {why}; the run stopped, nothing partial was left (free some space and rerun to resume)")
    return error


def file_identity(path) -> list | None:
    """[size, modification time in ns] of a file as it is now (None if it cannot be read): a file replaced or
    cut short under the same name is another identity (what resume keys an output on)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _sync(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _sync_folder(folder: Path) -> None:
    """The rename itself made durable (a crash right after it keeps the new name)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a folder; the rename is still atomic
    finally:
        os.close(fd)


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


@contextmanager
def run_lock(out: Path):
    """One run at a time per output folder, for both engines: a second run into a folder another is still
    writing (which could delete or double its outputs) is one line, before it writes anything. An advisory
    lock (flock) on `out/.keypoints.lock`, released when the run ends however it ends (the kernel drops it
    with a killed process); the file goes with a run that ends, so a folder holds only its outputs. A
    folder that cannot be made or written is left to guard_outputs to name."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError:
        yield
        return
    path = out / LOCK
    while True:
        try:
            lock = open(path, "a")
        except OSError:
            yield
            return
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise KeypointsError(f"{out}: another keypoints run is writing into this folder; wait for it to finish, "
                                 "or choose another output=") from None
        if _same_file(lock, path):
            break
        lock.close()  # the file we locked was removed by the run that just ended: lock the one there now
    try:
        yield
    finally:
        path.unlink(missing_ok=True)  # while still held: a run waiting on this file sees it gone and retries
        lock.close()


def _same_file(opened, path: Path) -> bool:
    try:
        st = path.stat()
    except OSError:
        return False
    mine = os.fstat(opened.fileno())
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


def guard_outputs(out: Path, inputs: list[Path], targets: list[Path], overwrite: bool,
                  replaceable: set[Path] = frozenset()) -> None:
    """The one place that decides whether a run may write: `out` must be (or become) a writable
    folder, no target may be an input (by path, symlink or hard link), and an existing target is only
    replaced with `overwrite=true` or when it is `replaceable` (an earlier run's half-done photo:
    keypoints.inference.runner.resume_plan), as a new file renamed over it (atomic_path), never written through.
    Every command that writes asks it: detect and filter (runner), export, pseudo_label, engine=ray."""
    if out.exists() and not out.is_dir():
        raise KeypointsError(f"{out}: output= is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out).close()  # found out now, not after every photo was processed
    except OSError as e:
        raise KeypointsError(f"{out}: output folder cannot be {'written' if out.is_dir() else 'created'} ({e.strerror or e})") from None
    given = {p.resolve() for p in inputs}
    same = {(st.st_dev, st.st_ino) for st in map(_stat, inputs) if st}
    for target in targets:
        st = _stat(target)
        if target.resolve() in given or (st and (st.st_dev, st.st_ino) in same):
            raise KeypointsError(f"{target}: output would overwrite an input (the same file, or a link to it); "
                                 "choose another output= folder")
        if (target.exists() or target.is_symlink()) and not overwrite and target not in replaceable:
            raise KeypointsError(f"{target}: already exists and is not a whole output of an earlier run (cut short by an "
                                 "older version, or some other file); choose an empty output= folder, delete it or overwrite=true")


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except OSError:
        return None
