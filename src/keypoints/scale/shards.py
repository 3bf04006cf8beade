"""What a batch run writes: Parquet shards, one row a photo (path, width, height, faces with box,
score, 68 points, pose and 68 points in 3D as in the JSON of docs/JSON.md, and `error`: the one line `keypoints
detect` prints for a photo that failed, null otherwise), and a manifest that ties the shards to
their inputs, so a re-run skips exactly the shards written and never writes a photo twice."""

import hashlib
import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from keypoints.core import outputs
from keypoints.core.errors import KeypointsError

POSE = pa.struct([("yaw", pa.float64()), ("pitch", pa.float64()), ("roll", pa.float64())])
FACE = pa.struct([("box", pa.list_(pa.int64())), ("score", pa.float64()),
                  ("keypoints", pa.list_(pa.list_(pa.float64()))), ("pose", POSE),
                  ("keypoints_3d", pa.list_(pa.list_(pa.float64())))])
SCHEMA = pa.schema([("path", pa.string()), ("width", pa.int64()), ("height", pa.int64()),
                    ("faces", pa.list_(FACE)), ("error", pa.string())])
MANIFEST = "_keypoints_shards.json"
PROVENANCE = "keypoints"  # the key of a shard's footer metadata: what made it (why_redo)


def shard_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def write_shard(out: Path, index: int, rows: list[dict], made_by: str, inputs: str) -> Path:
    """One shard, whole or not at all: a temporary file renamed into place (keypoints.core.outputs), so a
    killed actor leaves no half file and its retry writes the same name again. Its footer says what made it
    (`made_by`: keypoints.inference.config.provenance) and from which photos (`inputs`: input_identity), for resume."""
    target = out / shard_name(index)
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    table = table.replace_schema_metadata({PROVENANCE: json.dumps({"made_by": made_by, "inputs": inputs, "rows": len(rows)})})
    with outputs.atomic_path(target) as temp:
        pq.write_table(table, temp)
    return target


def input_identity(paths: list[str]) -> str:
    """A shard's photos as they are now: each path with its size and modification time (a photo replaced
    or cut short under the same name is another identity)."""
    return hashlib.sha256(json.dumps([[p, *(outputs.file_identity(p) or [None, None])] for p in paths]).encode()).hexdigest()[:16]


def why_redo(path: Path, rows: int, made_by: str, inputs: str) -> str | None:
    """None if the shard at `path` is whole (its Parquet footer read, its row count right), made by these
    settings from these photos, with no failed row; else why it is done again."""
    try:
        shard = pq.ParquetFile(path)  # its footer read once
        meta = shard.metadata
        said = json.loads((meta.metadata or {}).get(PROVENANCE.encode(), b"null")) or {}
        fine = shard.read(columns=["error"]).column("error").null_count  # rows without an error
    except (OSError, ValueError, pa.ArrowException):
        return "not a whole Parquet file"
    if meta.num_rows != rows or said.get("rows") != rows:
        return f"{meta.num_rows} rows, not {rows}"
    if said.get("made_by") != made_by:
        return "another model or detector settings"
    if said.get("inputs") != inputs:
        return "a photo changed (size or time)"
    if fine != rows:
        return f"{rows - fine} failed row(s), tried again"
    return None


def remove_leftovers(out: Path, indices) -> None:
    """The temporary files a killed writer left for these shards (keypoints.core.outputs): never a shard.
    Only while no writer is running: before a run's actors start, and after they have all finished."""
    for temp in (t for i in indices for t in outputs.leftovers(out, shard_name(i))):
        outputs.remove(temp)


def plan(out: Path, paths: list[str], shard_photos: int, overwrite: bool, made_by: str) -> tuple[list[list[str]], set[int], list[str]]:
    """The shards (lists of paths), the indices an earlier run of the same inputs already wrote whole, made
    by these settings from these photos and with no failed row (skipped), and the inputs' identities (a
    shard's for its footer). A re-run redoes every other shard and says how many and why; overwrite=true
    redoes them all. A run of other inputs or another shard size there is refused in one line unless
    overwrite=true, which removes its shards (and only those)."""
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
    identities = [input_identity(shard) for shard in shards]
    done, why = set(), Counter()
    for i, shard in enumerate(shards):
        if not (out / shard_name(i)).is_file():
            continue
        reason = "overwrite=true" if overwrite else why_redo(out / shard_name(i), len(shard), made_by, identities[i])
        if reason is None:
            done.add(i)
        else:
            why[reason] += 1
    if why:
        print(f"{out}: redoing {sum(why.values())} shard(s) written before: "
              + "; ".join(f"{n} {reason}" for reason, n in why.most_common()))
    return shards, done, identities
