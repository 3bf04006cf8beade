"""What a batch run writes: Parquet shards, one row a photo (path, width, height, faces with box,
score, 68 points and pose as in the JSON of docs/JSON.md, and `error`: the one line `keypoints
detect` prints for a photo that failed, null otherwise), and a manifest that ties the shards to
their inputs, so a re-run skips exactly the shards written and never writes a photo twice."""

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from keypoints.core import outputs
from keypoints.core.errors import KeypointsError

POSE = pa.struct([("yaw", pa.float64()), ("pitch", pa.float64()), ("roll", pa.float64())])
FACE = pa.struct([("box", pa.list_(pa.int64())), ("score", pa.float64()),
                  ("keypoints", pa.list_(pa.list_(pa.float64()))), ("pose", POSE)])
SCHEMA = pa.schema([("path", pa.string()), ("width", pa.int64()), ("height", pa.int64()),
                    ("faces", pa.list_(FACE)), ("error", pa.string())])
MANIFEST = "_keypoints_shards.json"


def shard_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def write_shard(out: Path, index: int, rows: list[dict]) -> Path:
    """One shard, whole or not at all: a temporary file renamed into place (keypoints.core.outputs), so a
    killed actor leaves no half file and its retry writes the same name again."""
    target = out / shard_name(index)
    with outputs.atomic_path(target) as temp:
        pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), temp)
    return target


def remove_leftovers(out: Path, indices) -> None:
    """The temporary files a killed writer left for these shards (keypoints.core.outputs): never a shard.
    Only while no writer is running: before a run's actors start, and after they have all finished."""
    for temp in (t for i in indices for t in outputs.leftovers(out, shard_name(i))):
        outputs.remove(temp)


def plan(out: Path, paths: list[str], shard_photos: int, overwrite: bool) -> tuple[list[list[str]], set[int]]:
    """The shards (lists of paths) and the indices already written by an earlier run of the same
    inputs into `out`; a run of other inputs or another shard size there is refused in one line
    unless overwrite=true, which removes its shards (and only those)."""
    shards = [paths[i:i + shard_photos] for i in range(0, len(paths), shard_photos)]
    digest = hashlib.sha256("\n".join(paths).encode()).hexdigest()
    manifest = {"photos": len(paths), "shard_photos": shard_photos, "shards": len(shards), "paths_sha256": digest}
    path = out / MANIFEST
    if path.is_file():
        try:
            earlier = json.loads(path.read_text())
        except ValueError:
            earlier = None
        if earlier != manifest:
            if not overwrite:
                raise KeypointsError(f"{out}: holds the shards of another run (other photos or shard size, {MANIFEST}); "
                                     "output=another folder, or overwrite=true to replace them")
            for old in out.glob("part-*.parquet"):
                old.unlink()
    elif any(out.glob("part-*.parquet")) and not overwrite:
        raise KeypointsError(f"{out}: has part-*.parquet files of unknown origin; output=another folder, or overwrite=true")
    out.mkdir(parents=True, exist_ok=True)
    outputs.write_json(path, manifest)
    remove_leftovers(out, range(len(shards)))
    done = {i for i in range(len(shards)) if (out / shard_name(i)).is_file()}
    return shards, done
