"""The photos of a batch run, as one sorted list of paths: a folder (its files, as `keypoints detect`
lists them), a text file (one path a line), or a column of paths in a Parquet or CSV file."""

import csv
from collections import Counter
from pathlib import Path

from keypoints.core.errors import KeypointsError
from keypoints.inference.runner import folder_listing, left_out, media_files, without_earlier_outputs

LISTS = (".txt", ".lst")
MAX_PATH = 4096  # Linux's PATH_MAX: a longer entry, or one with a NUL byte, names no file
TABLES = (".parquet", ".csv")


def photo_paths(spec, column: str = "path") -> tuple[list[str], list[tuple[str, str]]]:
    """(paths, skipped: (path, what it is) for folder entries that are not files), paths in a stable
    order so that shard k holds the same photos in every run; relative paths in a list or table are
    taken from the current folder, as `input=` is."""
    source = Path(str(spec))
    if source.is_dir():
        files, skipped = folder_listing(source)
        files, _ = without_earlier_outputs(files)
        files, others = media_files(files)
        left_out(source, others, "that are not images or videos by their names")
        if not files:
            raise KeypointsError(f"{source}: folder has no images (engine=ray: a folder of photos, a .txt of paths, or a "
                                 f".parquet/.csv with a `{column}` column)")
        return [str(p) for p in files], [(str(p), kind) for p, kind in skipped]
    if not source.is_file():
        raise KeypointsError(f"{source}: input not found (engine=ray: a folder, a .txt of paths, or a .parquet/.csv with a "
                             f"`{column}` column)")
    suffix = source.suffix.lower()
    if suffix in LISTS:
        paths = [line.strip() for line in source.read_text(errors="replace").splitlines()]
        paths = [p for p in paths if p and not p.startswith("#")]
    elif suffix == ".csv":
        with open(source, newline="", errors="replace") as f:
            rows = csv.DictReader(f)
            try:
                if column not in (rows.fieldnames or []):
                    raise KeypointsError(f"{source}: no `{column}` column (engine.column=the column of photo paths; "
                                         f"it has {', '.join((rows.fieldnames or [])[:5]) or 'none'})")
                paths = [row[column] for row in rows]
            except csv.Error as e:  # a field over csv's limit (131,072 characters), a NUL byte
                raise KeypointsError(f"{source}:{rows.line_num + 1}: not a CSV row ({e})") from None
    elif suffix == ".parquet":
        import pyarrow.parquet as pq  # the `scale` extra

        try:
            table = pq.read_table(source, columns=[column])
        except (KeyError, ValueError) as e:
            raise KeypointsError(f"{source}: no `{column}` column (engine.column=the column of photo paths): {e}".splitlines()[0]) from None
        except OSError as e:
            raise KeypointsError(f"{source}: not a Parquet file ({e})".splitlines()[0]) from None
        paths = [p for p in table.column(column).to_pylist()]
    else:
        raise KeypointsError(f"{source}: engine=ray takes a folder, a .txt of paths (one a line), or a .parquet/.csv with a "
                             f"`{column}` column, not a {suffix or 'file without a suffix'}")
    bad = next((i for i, p in enumerate(paths) if not isinstance(p, str) or not p.strip() or "\0" in p or len(p) > MAX_PATH), None)
    if bad is not None:
        shown = repr(paths[bad]) if not isinstance(paths[bad], str) or len(paths[bad]) <= 80 else f"{paths[bad][:60]!r}... ({len(paths[bad])} characters)"
        raise KeypointsError(f"{source}: row {bad + 1}: not a path ({shown})")
    if not paths:
        raise KeypointsError(f"{source}: no photo paths in it")
    unique = list(dict.fromkeys(paths))  # a photo listed twice is one row (its first place)
    if len(unique) < len(paths):
        twice = [p for p, n in Counter(paths).items() if n > 1]
        print(f"{source}: {len(twice)} path(s) listed more than once, each done once ({', '.join(twice[:3])}{', ...' if len(twice) > 3 else ''})")
    return unique, []
