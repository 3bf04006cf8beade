"""engine=ray on a local Ray (2 CPUs) and real photos: the rows equal `keypoints detect`'s JSON, a
bad photo is a row that says why, a re-run resumes, and a killed actor loses no photo and doubles none."""

import json
import shutil
import signal
import threading
import time
from pathlib import Path

import cv2
import psutil
import pyarrow.parquet as pq
import pytest
import ray

from conftest import DATA, PHOTOS, run_script
from keypoints.core import outputs
from keypoints.core.errors import KeypointsError


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """A folder of 26 real photos (test-split frames, the Obamas, Mona Lisa) and one that is not a photo."""
    folder = tmp_path_factory.mktemp("photos")
    for path in sorted((DATA / "test").glob("*.jpg"))[:24] + [PHOTOS / "obamas.jpg", PHOTOS / "mona_lisa.jpg"]:
        shutil.copy(path, folder / path.name)
    (folder / "broken.jpg").write_bytes(b"not a jpeg at all")
    return folder


def rows(out: Path) -> list[dict]:
    return [row for part in sorted(out.glob("part-*.parquet")) for row in pq.read_table(part).to_pylist()]


def test_rows_equal_the_json_of_keypoints_detect_and_a_bad_photo_says_why(cluster, photos, tmp_path):
    proc = run_script("detect.py", f"input={photos}", f"output={tmp_path / 'ray'}", "engine=ray", "engine.shard_photos=5", check=False)
    assert proc.returncode == 2 and "27 photos, " in proc.stdout and "1 error(s)" in proc.stdout and "Ray's share: " in proc.stdout
    assert "error: 1 of 27 photos failed: their rows say why" in proc.stderr  # the exit code and the summary line of the local engine
    chatter = proc.stdout + proc.stderr  # Ray Data's plan and progress lines stay in its log file; no auth warning at each start
    assert "\tINFO " not in chatter and "Token authentication" not in chatter, chatter[-2000:]
    local = run_script("detect.py", f"input={photos}", f"output={tmp_path / 'local'}", check=False)
    assert local.returncode == 2  # the broken photo: reported, the rest written
    got = {Path(row["path"]).name: row for row in rows(tmp_path / "ray")}
    assert len(got) == 27 and len(list((tmp_path / "ray").glob("part-*.parquet"))) == 6
    for name, row in got.items():
        if name == "broken.jpg":
            assert row["faces"] is None and row["width"] is None
            assert f"error: {row['error']}" in local.stderr  # the very line the CLI prints
            continue
        record = json.loads((tmp_path / "local" / f"{Path(name).stem}.json").read_text())
        assert row["error"] is None and (row["width"], row["height"]) == (record["width"], record["height"])
        assert row["faces"] == record["faces"]
    assert sum(len(row["faces"] or []) for row in got.values()) >= 27


def test_a_rerun_skips_the_shards_written_and_redoes_a_missing_one(cluster, photos, tmp_path):
    out = tmp_path / "out"
    run_script("detect.py", f"input={photos}", f"output={out}", "engine=ray", "engine.shard_photos=10", check=False)
    first = rows(out)
    (out / "part-00001.parquet").unlink()
    proc = run_script("detect.py", f"input={photos}", f"output={out}", "engine=ray", "engine.shard_photos=10", check=False)
    # part 1 missing; part 2 holds broken.jpg's failed row: tried again
    assert "skipped 1 of 3 shard(s) already written" in proc.stdout
    assert "2 shard(s) written (part-00001.parquet, part-00002.parquet)" in proc.stdout  # the shards it wrote, by name
    assert "redoing 1 shard(s) written before: 1 1 failed row(s), tried again" in proc.stdout
    again = rows(out)
    assert sorted(r["path"] for r in again) == sorted(r["path"] for r in first) and len(again) == 27
    assert sorted(again, key=lambda r: r["path"]) == sorted(first, key=lambda r: r["path"])
    other = run_script("detect.py", f"input={photos}", f"output={out}", "engine=ray", "engine.shard_photos=4", check=False)
    assert other.returncode == 2 and "holds the shards of another run" in other.stderr


def test_a_killed_actor_is_restarted_and_no_photo_is_lost_or_written_twice(cluster, photos, tmp_path):
    out, killed = tmp_path / "out", []

    def kill_one_actor():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            for proc in psutil.process_iter(["cmdline"]):
                if "ShardWriter" in " ".join(proc.info["cmdline"] or []) and any(out.glob("part-*.parquet")):
                    proc.send_signal(signal.SIGKILL)
                    killed.append(len(list(out.glob("part-*.parquet"))))
                    return
            time.sleep(0.01)

    killer = threading.Thread(target=kill_one_actor)
    killer.start()
    proc = run_script("detect.py", f"input={photos}", f"output={out}", "engine=ray", "engine.shard_photos=1", check=False)
    killer.join()
    assert killed and killed[0] < 27, "no actor was killed mid-run"
    paths = [r["path"] for r in rows(out)]
    assert proc.returncode == 2 and len(paths) == len(set(paths)) == 27  # 2: the broken photo
    assert not list(out.glob(".part-*"))  # no temporary file left: every shard whole


def test_a_killed_writers_temporary_file_is_removed_and_nothing_else(tmp_path):
    """What a writer killed mid-write leaves (its temporary file, keypoints.core.outputs) goes once no writer
    runs; shards, other shards' files and files of other names stay."""
    from keypoints.core import outputs
    from keypoints.scale.shards import remove_leftovers, shard_name

    left = outputs.temporary_name(tmp_path / shard_name(1))
    kept = [tmp_path / shard_name(0), tmp_path / shard_name(1), outputs.temporary_name(tmp_path / shard_name(7)), tmp_path / "notes.txt"]
    for path in [left, *kept]:
        path.write_bytes(b"x")
    remove_leftovers(tmp_path, [0, 1, 2])
    assert not left.exists() and all(path.exists() for path in kept)


def test_files_that_are_not_photos_are_left_out_by_name_on_both_engines_and_a_listed_twice_path_is_one_row(cluster, tmp_path):
    """A labels.csv beside the photos is left out and said (image tools skip it), not a failed photo; a file
    named as a photo that does not decode stays one; a path listed twice is one row; an empty folder is one line."""
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(PHOTOS / "obamas.jpg", folder / "obamas.jpg")
    (folder / "labels.csv").write_text("name,x0,y0\nobamas.jpg,1,2\n")
    local = run_script("detect.py", f"input={folder}", f"output={tmp_path / 'local'}")
    assert "left out 1 file(s) that are not images or videos by their names (labels.csv)" in local.stdout
    assert not (tmp_path / "local" / "labels.png").exists()
    on_ray = run_script("detect.py", f"input={folder}", f"output={tmp_path / 'ray'}", "engine=ray")
    assert "left out 1 file(s) that are not images or videos" in on_ray.stdout and [r["error"] for r in rows(tmp_path / "ray")] == [None]
    listing = tmp_path / "list.txt"
    listing.write_text(f"{folder / 'obamas.jpg'}\n{folder / 'obamas.jpg'}\n")
    twice = run_script("detect.py", f"input={listing}", f"output={tmp_path / 'twice'}", "engine=ray")
    assert "1 path(s) listed more than once, each done once" in twice.stdout and len(rows(tmp_path / "twice")) == 1
    (tmp_path / "empty").mkdir()
    empty = run_script("detect.py", f"input={tmp_path / 'empty'}", f"output={tmp_path / 'none'}", "engine=ray", check=False)
    assert empty.returncode == 2 and empty.stderr.startswith("error: ") and "folder has no images" in empty.stderr


def test_a_second_ray_run_into_a_folder_another_is_writing_is_refused(cluster, tmp_path):
    out = tmp_path / "out"
    with outputs.run_lock(out):
        proc = run_script("detect.py", f"input={PHOTOS}", f"output={out}", "engine=ray", check=False)
    assert proc.returncode == 2 and "another keypoints run is writing into this folder" in proc.stderr
    assert not list(out.glob("*.parquet"))


def test_a_rerun_redoes_what_another_model_setting_or_photo_made_and_a_broken_shard(cluster, tmp_path):
    """Resume keyed on what made each shard (its Parquet footer: the model and detector settings, the photos'
    sizes and times): nothing stale is skipped, a shard cut short is redone, overwrite=true redoes all."""
    folder, out = tmp_path / "photos", tmp_path / "out"
    folder.mkdir()
    for path in sorted((DATA / "test").glob("*.jpg"))[:4]:
        shutil.copy(path, folder / path.name)
    run = lambda *extra: run_script("detect.py", f"input={folder}", f"output={out}", "engine=ray", "engine.shard_photos=2", *extra)
    run()
    assert "skipped 2 of 2 shard(s)" in run().stdout
    changed = run("detector.faces.min_score=0.99")
    assert "redoing 2 shard(s) written before: 2 another model or detector settings" in changed.stdout
    assert "skipped 2 of 2 shard(s)" in run("detector.faces.min_score=0.99", "workers=2").stdout  # speed only: not a change
    first = sorted(folder.iterdir())[0]
    shutil.copy(PHOTOS / "obamas.jpg", first)  # another photo under the same name
    replaced = run("detector.faces.min_score=0.99")
    assert "redoing 1 shard(s) written before: 1 a photo changed (size or time)" in replaced.stdout
    obamas = cv2.imread(str(PHOTOS / "obamas.jpg"))
    row = next(r for r in rows(out) if r["path"] == str(first))
    assert (row["width"], row["height"]) == (obamas.shape[1], obamas.shape[0])  # the Obamas, not the old frame
    (out / "part-00001.parquet").write_bytes((out / "part-00001.parquet").read_bytes()[:300])  # cut short
    cut = run("detector.faces.min_score=0.99")
    assert "1 not a whole Parquet file" in cut.stdout and len(rows(out)) == 4
    assert "redoing 2 shard(s) written before: 2 overwrite=true" in run("detector.faces.min_score=0.99", "overwrite=true").stdout


def test_an_address_ray_cannot_reach_is_one_line(tmp_path):
    """engine.address=ray://... without the ray[client] package (or no cluster there) was Ray's 55-line traceback."""
    proc = run_script("detect.py", f"input={PHOTOS}", f"output={tmp_path / 'out'}", "engine=ray", "engine.address=ray://127.0.0.1:1",
                      check=False, process=True)  # its own process: this one may have a local Ray running already
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("error: engine.address=ray://127.0.0.1:1: Ray could not start or join a cluster (")


@pytest.mark.parametrize("name, content, message", [
    ("list.txt", "ok.jpg\na\0b.jpg\n", r"list\.txt: row 2: not a path \('a\\x00b\.jpg'\)"),
    ("paths.csv", "path\nok.jpg\na\0b.jpg\n", r"paths\.csv: row 2: not a path"),
    ("paths.csv", 'path\nok.jpg\n"' + "a" * 140_000 + '"\n', r"paths\.csv:3: not a CSV row \(field larger than field limit"),
    ("list.txt", "a" * 5000 + ".jpg\n", r"list\.txt: row 1: not a path \('a{60}'\.\.\. \(5004 characters\)\)"),
])
def test_a_list_or_table_entry_that_names_no_file_is_one_line_naming_its_row(tmp_path, name, content, message):
    from keypoints.scale.inputs import photo_paths

    (tmp_path / name).write_text(content)
    with pytest.raises(KeypointsError, match=message):
        photo_paths(tmp_path / name)


def test_a_killed_run_takes_its_local_ray_cluster_with_it(photos, tmp_path):
    """SIGKILL leaves a driver no time to shut Ray down: the watchdog beside its local cluster ends every
    process the run started (Ray's agents alone lingered about a minute, ~185 MB)."""
    import os
    import subprocess
    import sys

    from conftest import REPO

    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # a cluster of its own, as a user's first run
    driver = subprocess.Popen([sys.executable, "scripts/detect.py", f"input={photos}", f"output={tmp_path / 'out'}",
                               "engine=ray", f"hydra.run.dir={tmp_path / 'run'}"], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, started = time.monotonic() + 120, []
    while time.monotonic() < deadline and not any(p.name().startswith("ray::") for p in started):
        time.sleep(0.5)
        started = psutil.Process(driver.pid).children(recursive=True)
    assert any(p.name().startswith("ray::") for p in started), "Ray's processes never started"
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    _, alive = psutil.wait_procs([p for p in started if p.is_running()], timeout=15)
    alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, [(p.pid, p.name()) for p in alive]
