"""`scripts/pseudo_label.py`'s work: every teacher reads every photo, their labels are combined point by
point, and the CSV a data config reads as a source is written (conf/pseudo_label.yaml says how)."""

import json
from pathlib import Path

import numpy as np
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from keypoints.core import tables
from keypoints.core.annotations import read_annotations
from keypoints.core.annotations import SPLITS
from keypoints.core.errors import KeypointsError
from keypoints.core.landmarks import GROUPS
from keypoints.teachers import labels as tl
from keypoints.core import outputs


def build_teacher(key: str, spec: DictConfig):
    """A teacher from its config; the point groups it may teach (its `groups` key; all by default);
    whether its points are mapped onto ours (`map_points`; by default, unless they already are)."""
    spec = OmegaConf.to_container(spec, resolve=True)
    groups, map_points = spec.pop("groups", None) or list(GROUPS), spec.pop("map_points", None)
    tl.group_mask(groups, f"teachers.{key}.groups")  # one line for an unknown group, before the teacher loads
    if map_points is not None and not isinstance(map_points, bool):
        raise KeypointsError(f"teachers.{key}.map_points={map_points!r}: must be true, false or null")
    try:
        teacher = instantiate(spec)
    except InstantiationException as e:  # a teacher's own one-line error, or Hydra's first line
        cause = e.__cause__
        raise (cause if isinstance(cause, KeypointsError) else KeypointsError(f"teachers.{key}: {str(e).splitlines()[0]}")) from None
    ours = getattr(teacher, "points_are_ours", False)
    if map_points is None:
        map_points = not ours
    if not map_points and not ours and getattr(teacher, "points", None) != 68:
        raise KeypointsError(f"teachers.{key}.map_points=false: its points are not our 68; they must be mapped")
    return teacher, groups, map_points and not ours


def label_folder(cfg: DictConfig) -> dict:
    """Labels `cfg.images` into `cfg.output` (and `<output>.json`, the summary it returns)."""
    images, output = Path(cfg.images), Path(cfg.output)
    if output.is_dir():  # found now, not after every photo was labelled
        raise KeypointsError(f"output={output}: a folder; output= names the CSV to write (e.g. {output / 'labels.csv'})")
    if output.exists() and not cfg.overwrite:
        raise KeypointsError(f"output={output} exists: pass overwrite=true to replace it")
    truth = None
    if cfg.check_labels:  # label only the photos this CSV names, and score the teachers against it
        if not Path(cfg.check_labels).is_file():
            raise KeypointsError(f"check_labels={cfg.check_labels}: no such CSV file")
        names, truth = read_annotations(Path(cfg.check_labels))
        rows = slice(cfg.check_skip, None if cfg.check_limit is None else cfg.check_skip + cfg.check_limit)
        names, truth = names[rows], truth[rows]
        paths = [images / name for name in names]
    else:
        paths = tl.image_files(images)
    # neither the CSV nor its summary may replace a photo being labelled or the labels checked against
    inputs = paths + ([Path(cfg.check_labels)] if cfg.check_labels else [])
    outputs.guard_outputs(output.parent, inputs, [output, Path(f"{output}.json")], overwrite=True)
    kept, sizes = tl.readable(paths)  # (N, 2) widths and heights of the files that are images
    if not kept:
        raise KeypointsError(f"images={images}: none of its {len(paths)} image files can be read")
    skipped = [str(paths[i].relative_to(images)) for i in sorted(set(range(len(paths))) - set(kept))]
    paths = [paths[i] for i in kept]
    truth = None if truth is None else truth[kept]
    readings, reports, names_of = [], [], []
    for key, spec in cfg.teachers.items():
        teacher, groups, map_points = build_teacher(key, spec)
        names_of.append(teacher.name)
        point_map = None
        if not getattr(teacher, "points_are_ours", False):  # measured on the training split, mapped or not
            folder, csv_name = SPLITS["train"]
            root, limit = Path(cfg.paths.data_dir), cfg.calibration.limit
            train_names, train_labels = read_annotations(root / csv_name)
            tl.progress(f"{teacher.name}: fitting its points to ours on {len(train_names[:limit])} training photos")
            point_map, report = tl.calibrate(teacher, [root / folder / n for n in train_names[:limit]], train_labels[:limit],
                                             cfg.calibration.k, cfg.calibration.ridge, cfg.calibration.holdout)
            point_map = point_map if map_points else None
            reports.append({**report, "mapped": map_points})
            tl.progress(json.dumps(report))
        tl.progress(f"{teacher.name}: labelling {len(paths)} photos and their mirror images (teaches {', '.join(groups)})")
        readings.append(tl.read_with_mirror(teacher, paths, sizes[:, 0], point_map, groups))
    points, confidence, best = tl.combine(readings, cfg.combine)
    face = tl.face_confidence(confidence)
    keep = tl.usable(points, face, sizes, cfg.min_confidence)
    if not keep.any():
        raise KeypointsError(f"images={images}: no face got a label from the teachers ({', '.join(names_of)})")
    output.parent.mkdir(parents=True, exist_ok=True)
    tl.write_csv(output, [str(paths[i].relative_to(images)) for i in np.flatnonzero(keep)], points[keep], confidence[keep])
    summary = {"images": str(images), "photos": len(paths), "labelled": int(keep.sum()), "skipped": skipped,
               "median_confidence": float(np.median(face[keep])),
               "points_taught": {g: float((confidence[keep][:, idx] > 0).mean()) for g, idx in GROUPS.items()},
               "led_by": {n: int((best[keep] == i).sum()) for i, n in enumerate(names_of)}, "calibration": reports}
    if truth is not None:
        summary["check"] = tl.score(readings + [(points, confidence)], names_of + [f"kept ({cfg.combine})"], truth)
        print(tables.markdown(["labels", "faces labelled", "inner 51 / box: mean", "median", "FR@0.10",
                               "confidence vs error (corr.)"], summary["check"]))
    outputs.write_json(f"{output}.json", summary, indent=2, allow_nan=True)
    print(f"{output}: {keep.sum()} of {len(paths)} photos labelled{f' ({len(skipped)} unreadable file(s) skipped)' if skipped else ''}; "
          f"the teacher that weighed most {summary['led_by']}")
    return summary
