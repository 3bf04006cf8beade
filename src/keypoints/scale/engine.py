"""`engine=ray`: shards of photos through a pool of Ray actors, each holding one Detector, with Ray
Data's `map_batches` (its progress bar, its retries: a killed actor is restarted and its shard run
again), each shard written as one Parquet file (shards.py); then the run's figures."""

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from keypoints.detect import load_detector
from keypoints.core.errors import KeypointsError
from keypoints.core.io import read_image
from keypoints.core.outputs import guard_outputs, run_lock
from keypoints.inference.config import provenance
from keypoints.inference.runner import checked_output, detect_each, failure, is_video
from keypoints.scale.inputs import photo_paths
from keypoints.scale.shards import plan, remove_leftovers, shard_name, write_shard

SCALE_EXTRA = "pip install 'keypoints[scale]'"


class ShardWriter:
    """A Ray actor: one Detector (one CPU, one ONNX Runtime thread), shards in, Parquet files out. Its settings
    come with each shard (`job`: the composed config and the output folder, as JSON), not as constructor
    arguments, which Ray would keep in its object store for a restart (its issue 53727): a restarted actor
    needs nothing but the shard it is handed. (Ray Data still passes the pool's pickled function that way,
    and Ray's core worker says so once a run; the restart works: tests/test_ray.py kills an actor.)"""

    def __init__(self):
        self.job, self.detector = None, None

    def _load(self, job: str) -> None:
        if job != self.job:  # the first shard (every shard of a run carries the same job)
            settings, out = json.loads(job)
            cfg = OmegaConf.create(settings)
            self.detector = load_detector(cfg, cfg.ckpt_path)
            self.batch_photos, self.out, self.job = cfg.batch_photos, Path(out), job

    def __call__(self, batch: dict) -> dict:
        figures = {"shard": [], "photos": [], "faces": [], "errors": [], "seconds": []}
        for index, paths, inputs, made_by, job in zip(batch["shard"], batch["paths"], batch["inputs"], batch["made_by"], batch["job"]):
            self._load(str(job))
            start = time.perf_counter()
            rows = self.rows([str(p) for p in paths])
            write_shard(self.out, int(index), rows, str(made_by), str(inputs))
            for key, value in (("shard", int(index)), ("photos", len(rows)), ("faces", sum(len(r["faces"] or []) for r in rows)),
                               ("errors", sum(r["error"] is not None for r in rows)), ("seconds", time.perf_counter() - start)):
                figures[key].append(value)
        return figures

    def rows(self, paths: list[str]) -> list[dict]:
        """Each photo's row, in `paths`' order: its faces, or the one-line reason it has none."""
        rows, good = [], []
        for path in paths:
            try:
                if is_video(Path(path)):
                    raise KeypointsError(f"{path}: a video; engine=ray takes photos (keypoints detect input=<video> runs one)")
                image = read_image(path, self.detector.max_pixels)
                rows.append({"path": path, "width": image.shape[1], "height": image.shape[0], "faces": None, "error": None})
                good.append((len(rows) - 1, image))
            except Exception as e:  # noqa: BLE001  (a photo that fails is a row that says why, as the CLI prints it)
                rows.append({"path": path, "width": None, "height": None, "faces": None, "error": str(failure(path, e))})

        def fail(i: int, error: Exception) -> None:
            rows[i]["error"] = str(failure(rows[i]["path"], error))

        for start in range(0, len(good), self.batch_photos):
            part = good[start:start + self.batch_photos]
            for (i, _), faces in zip(part, detect_each(self.detector, part, fail)):
                if faces is not None:
                    rows[i]["faces"] = [face.to_json() for face in faces]
        return rows

def start_ray(address):
    """Ray, joined at `address` (or RAY_ADDRESS), else a local cluster on this machine's CPUs."""
    try:
        import ray
    except ImportError:
        raise KeypointsError(f"engine=ray needs Ray: {SCALE_EXTRA}") from None
    if not ray.is_initialized():
        # a local cluster keeps Ray's token authentication on; the warning that says so at every start goes
        logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
        if address is None and not os.environ.get("RAY_ADDRESS"):  # a local cluster of this run's own: it ends with the run,
            # watched from before it starts (a kill during ray.init leaves nothing either)
            subprocess.Popen([sys.executable, "-m", "keypoints.scale.watchdog", str(os.getpid())], start_new_session=True,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING,
                     runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
        except (ConnectionError, ValueError, RuntimeError) as e:  # no cluster there; ray:// without ray[client]
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:240]
            raise KeypointsError(f"engine.address={address}: Ray could not start or join a cluster ({first})") from None

    import ray.data  # noqa: F401  (configures its loggers: their console lines are raised to warnings below)

    for handler in logging.getLogger("ray.data").handlers:  # Ray Data's INFO lines (plan, progress) stay in its log file
        if not isinstance(handler, logging.FileHandler) and "File" not in type(handler).__name__:
            handler.setLevel(logging.WARNING)
    return ray


def run(cfg: DictConfig) -> dict:
    """`keypoints detect input=... output=... engine=ray`: writes output/part-NNNNN.parquet and prints
    the run's figures (photos, faces, photos/s, errors); returns them. One run at a time into a folder."""
    with run_lock(checked_output(cfg.output)):
        return _run(cfg)


def _run(cfg: DictConfig) -> dict:
    engine, out = cfg.engine, checked_output(cfg.output)
    paths, skipped = photo_paths(cfg.input, engine.column)
    guard_outputs(out, [Path(p) for p in paths], [], overwrite=True)  # a writable folder, holding no input
    for path, kind in skipped:
        print(f"error: {path}: {kind}, not a file (skipped unopened)", file=sys.stderr)
    settings = OmegaConf.to_container(cfg, resolve=True)
    settings["workers"] = 1  # an actor is one CPU: Ray's actors, not a detector's threads, use the cores
    load_detector(OmegaConf.create(settings), cfg.ckpt_path)  # the model and settings checked here, before Ray starts
    made_by = provenance(cfg, cfg.ckpt_path)
    shards, done, identities = plan(out, paths, engine.shard_photos, cfg.overwrite, made_by)
    todo = [i for i in range(len(shards)) if i not in done]
    if done:
        print(f"skipped {len(done)} of {len(shards)} shard(s) already written in {out} "
              f"({sum(len(shards[i]) for i in done)} photos; overwrite=true redoes them)")
    start = time.perf_counter()
    figures = {"photos": 0, "faces": 0, "errors": 0}
    first_shard, busy, actors = None, 0.0, 0  # Ray's own cost: seconds to the first shard written, the actors' idle share
    if todo:
        ray = start_ray(engine.address)
        actors = min(engine.actors or max(1, int(ray.cluster_resources().get("CPU", 1))), len(todo))
        job = json.dumps([settings, str(out.resolve())])
        items = ray.data.from_items([{"shard": i, "paths": shards[i], "inputs": identities[i], "made_by": made_by, "job": job}
                                     for i in todo], override_num_blocks=len(todo))
        pool = ray.data.ActorPoolStrategy(size=actors)  # Ray restarts a dead actor, retries its shard
        written = items.map_batches(ShardWriter, batch_size=1, compute=pool, num_cpus=1, batch_format="numpy")
        for row in written.iter_rows():
            if first_shard is None:
                first_shard = time.perf_counter() - start
            busy += float(row["seconds"])
            for key in figures:
                figures[key] += int(row[key])
        remove_leftovers(out, todo)  # an actor killed mid-write (Ray ran its shard again elsewhere) left its temporary file
    seconds = time.perf_counter() - start
    photos = figures["photos"]
    figures.update(shards=len(shards), shards_written=len(todo), seconds=seconds, first_shard_seconds=first_shard,
                   photos_per_s=photos / seconds if photos else 0.0,
                   actor_ms_per_photo=1000 * busy / photos if photos else 0.0,
                   overhead_ms_per_photo=1000 * (seconds * actors - busy) / photos if photos else 0.0)
    names = ", ".join(shard_name(i) for i in todo[:2]) + (", ..." if len(todo) > 2 else "")
    print(f"{out}: {len(todo)} shard(s) written{f' ({names})' if todo else ''}: {photos} photos, {figures['faces']} faces, "
          f"{figures['errors']} error(s), {figures['photos_per_s']:.1f} photos/s over {seconds:.1f} s")
    if photos:
        print(f"  Ray's share: {first_shard:.1f} s to the first shard written; {actors} actor(s) busy "
              f"{figures['actor_ms_per_photo']:.2f} ms a photo (read, detect, write), "
              f"{figures['overhead_ms_per_photo']:.2f} ms a photo more of their time went to start-up and waiting")
    if figures["errors"]:  # as the local engine: every photo done, then exit code 2 for the ones that failed
        raise KeypointsError(f"{figures['errors']} of {photos} photos failed: their rows say why (the `error` column of {out})")
    return figures
