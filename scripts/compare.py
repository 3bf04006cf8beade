"""Compare a sweep's jobs: `python scripts/compare.py outputs/multirun/<date_time>`.

Prints a table of every job's overrides and metrics, and writes comparison.md and comparison.png
into the sweep folder.
"""

import sys
from pathlib import Path

from keypoints.training import compare
from keypoints.commands.cli import friendly_errors
from keypoints.core.errors import KeypointsError
from keypoints.core import outputs


@friendly_errors
def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python scripts/compare.py outputs/multirun/<date_time>")
    sweep_dir = Path(sys.argv[1])
    bad = []
    rows = compare.collect(sweep_dir, bad)
    table = compare.markdown_table(rows)
    print(table)
    outputs.write_text(sweep_dir / "comparison.md", table + "\n")
    compare.plot(rows, sweep_dir / "comparison.png")
    print(f"\nwrote {sweep_dir / 'comparison.md'} and {sweep_dir / 'comparison.png'}")
    if bad:  # the good jobs are in the table above; the run still fails, naming each bad file
        raise KeypointsError("; ".join(bad))


if __name__ == "__main__":
    main()
