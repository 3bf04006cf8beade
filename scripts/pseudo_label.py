"""Labels for unlabelled photos from teachers: `python scripts/pseudo_label.py images=DIR output=CSV`."""

import json
from pathlib import Path

import hydra
import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig

from keypoints.training import pseudo_labels as pl
from keypoints import tables
from keypoints.cli import friendly_errors
from keypoints.data import read_annotations
from keypoints.data import SPLITS
from keypoints.errors import KeypointsError


@hydra.main(version_base="1.3", config_path="../conf", config_name="pseudo_label")
@friendly_errors
def main(cfg: DictConfig) -> None:
    images, output = Path(cfg.images), Path(cfg.output)
    if output.exists() and not cfg.overwrite:
        raise KeypointsError(f"output={output} exists: pass overwrite=true to replace it")
    truth = None
    if cfg.check_labels:  # label only the photos this CSV names, and score the teachers against it
        if not Path(cfg.check_labels).is_file():
            raise KeypointsError(f"check_labels={cfg.check_labels}: no such CSV file")
        names, truth = read_annotations(Path(cfg.check_labels))
        names, truth = names[: cfg.check_limit], truth[: cfg.check_limit]
        paths = [images / name for name in names]
    else:
        paths = pl.image_files(images)
    sizes = pl.sizes_of(paths)  # (N, 2) widths and heights
    readings, reports = [], []
    for spec in cfg.teachers.values():
        teacher = instantiate(spec)
        point_map = None
        if not getattr(teacher, "points_are_ours", False):
            folder, csv_name = SPLITS["train"]
            root, limit = Path(cfg.paths.data_dir), cfg.calibration.limit
            names, labels = read_annotations(root / csv_name)
            pl.progress(f"{teacher.name}: fitting its points to ours on {len(names[:limit])} training photos")
            point_map, report = pl.calibrate(teacher, [root / folder / n for n in names[:limit]], labels[:limit],
                                             cfg.calibration.k, cfg.calibration.ridge, cfg.calibration.holdout)
            reports.append(report)
            pl.progress(json.dumps(report))
        pl.progress(f"{teacher.name}: labelling {len(paths)} photos and their mirror images")
        readings.append(pl.read_with_mirror(teacher, paths, sizes[:, 0], point_map))
    points, confidence, best = pl.COMBINE[cfg.combine](readings)
    inside = ((points >= -0.1 * sizes[:, None]) & (points <= 1.1 * sizes[:, None])).all(axis=(1, 2))
    keep = np.isfinite(points).all(axis=(1, 2)) & inside & (confidence > 0) & (confidence >= cfg.min_confidence)
    names_of = [spec.name for spec in cfg.teachers.values()]
    if not keep.any():
        raise KeypointsError(f"images={images}: no face got a label from the teachers ({', '.join(names_of)})")
    output.parent.mkdir(parents=True, exist_ok=True)
    pl.write_csv(output, [str(paths[i].relative_to(images)) for i in np.flatnonzero(keep)], points[keep], confidence[keep])
    summary = {"images": str(images), "photos": len(paths), "labelled": int(keep.sum()),
               "median_confidence": float(np.median(confidence[keep])),
               "led_by": {n: int((best[keep] == i).sum()) for i, n in enumerate(names_of)}, "calibration": reports}
    if truth is not None:
        summary["check"] = pl.score(readings + [(points, confidence)], names_of + [f"kept ({cfg.combine})"], truth)
        print(tables.markdown(["labels", "faces labelled", "inner 51 / box: mean", "median", "FR@0.10",
                               "confidence vs error (corr.)"], summary["check"]))
    Path(f"{output}.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"{output}: {keep.sum()} of {len(paths)} photos labelled; the teacher that weighed most {summary['led_by']}")


if __name__ == "__main__":
    main()
