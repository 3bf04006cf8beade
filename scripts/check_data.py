"""Check a data root's layout and that every labelled image decodes: `python scripts/check_data.py [ROOT]`."""

import os
import sys
from pathlib import Path

from keypoints.commands.cli import friendly_errors
from keypoints.core.errors import KeypointsError
from keypoints.core.annotations import SPLITS
from keypoints.core.annotations import outside, read_annotations
from keypoints.core.io import read_image


@friendly_errors
def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("KEYPOINTS_DATA", "data/facial-keypoints"))
    for split, (folder, csv_name) in SPLITS.items():
        names, points = read_annotations(root / csv_name)  # also rejects degenerate rows, naming the line
        for name, p in zip(names, points):
            problem = outside(p, read_image(root / folder / name, upright=False))
            if problem:
                raise KeypointsError(f"{root / folder / name}: its label row's {problem}; fix or remove the row")
        print(f"{root}: {split}: {len(names)} labelled faces, all images readable, all labels inside their images")


if __name__ == "__main__":
    main()
