"""Side by side on a labelled set (the test split, or any folder in the Udacity CSV layout such as
`../shared/data/wild/aflw`), end to end: each method finds the faces in the whole image itself (no
ground-truth boxes) and its points are scored against the labels, two ways: NME over the 68 points
by the outer-eye-corner distance (300-W), and the error over the 51 inner points (brows, nose,
eyes, mouth: comparable across jaw conventions) by sqrt(w·h) of the labelled keypoints' box, which
stays meaningful on profiles, where the eye corners come together.

A labelled face counts as found when a returned face box contains the centre of its keypoints'
bounding box (the nearest such box is used). NME is over found faces; FR@0.10 and AUC@0.10 count a
miss as a failure (error = infinity), so a method cannot look better by giving up on hard faces.
"""

import time
from pathlib import Path

import numpy as np

from keypoints.core.annotations import SPLITS, read_annotations
from keypoints.inference.framing import keypoint_box
from keypoints.core.errors import KeypointsError
from keypoints.core.io import read_image
from keypoints.core.landmarks import GROUPS, per_face_nme
from keypoints.core import geometry, tables
from keypoints.core import outputs
from keypoints.benchmarks import head


def ours(detector):
    """The project's Detector as a method: image -> [(box, keypoints, face)] (the face: its pose and 3D points)."""
    return lambda image: [(face.box, face.keypoints, face) for face in detector(image)]


def matching(found: list, truth: np.ndarray) -> tuple | None:
    """The returned face whose box holds the labelled face's centre, or None."""
    i = geometry.nearest_box([item[0] for item in found], keypoint_box(truth)[0], containing=True)
    return None if i is None else found[i]


def match(found: list, truth: np.ndarray) -> np.ndarray | None:
    """The keypoints of the returned face whose box holds the labelled face's centre, or None."""
    item = matching(found, truth)
    return None if item is None else item[1]


INNER = slice(17, 68)  # brows, nose, eyes, mouth: the jaw's convention differs between label sets
JAW = slice(0, 17)  # its own NME column: the 2D outline must not drift towards a 3D-fitted teacher's contour


def box_error(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean error over the 51 inner points / sqrt(w·h) of the labelled 68 points' bounding box."""
    w, h = truth.max(axis=0) - truth.min(axis=0)
    return float(np.linalg.norm(np.asarray(pred, np.float64)[INNER] - truth[INNER], axis=1).mean() / np.sqrt(w * h))


def nme(pred: np.ndarray, truth: np.ndarray, face: np.ndarray | None = None) -> float:
    """One face's NME, by the definition the training metrics use; `face`: the whole face's 68 labels
    when `pred` and `truth` are some of its points (the jaw's), whose eye corners then divide."""
    if face is not None:
        return float(np.linalg.norm(np.asarray(pred, np.float64) - truth, axis=1).mean() / np.linalg.norm(face[36] - face[45]))
    as_batch = lambda points: np.asarray(points, np.float64)[None]  # noqa: E731
    return float(per_face_nme(as_batch(pred), as_batch(truth))[0])


def run_method(method, images: list[np.ndarray], truths: np.ndarray, heads: dict | None = None) -> dict:
    """Per-face errors (inf for a miss), the mean signed offset (pred - label, x and y pixels) over
    the found faces' points, and the time per image, detection included. `heads`: the labelled poses and 3D
    points (keypoints.benchmarks.head.load_heads), scored where the method gives faces with a pose (NaN else)."""
    method(images[0])  # warm-up: first-call allocations and lazy initialisation
    errors, box_errors, jaw_errors, offsets, seconds = [], [], [], [], 0.0
    group_errors = {group: [] for group in GROUPS}
    pose_errors, depth_errors = [], []
    for k, (image, truth) in enumerate(zip(images, truths)):
        start = time.perf_counter()
        found = method(image)
        seconds += time.perf_counter() - start
        item = matching(found, truth)
        pred = None if item is None else item[1]
        if heads is not None:
            pose_error, depth_error = head.errors(item[2] if item is not None and len(item) > 2 else None,
                                                  heads["pose"][k], heads["points_3d"][k])
            pose_errors.append(pose_error)
            depth_errors.append(depth_error)
        errors.append(np.inf if pred is None else nme(pred, truth))
        box_errors.append(np.inf if pred is None else box_error(pred, truth))
        jaw_errors.append(np.inf if pred is None else nme(np.asarray(pred)[JAW], truth[JAW], truth))
        for group, index in GROUPS.items():
            group_errors[group].append(np.inf if pred is None else nme(np.asarray(pred)[index], truth[index], truth))
        if pred is not None:
            offsets.append(np.mean(np.asarray(pred, np.float64) - truth, axis=0))
    offset = np.mean(offsets, axis=0) if offsets else np.full(2, np.nan)
    result = {"errors": np.array(errors), "box_errors": np.array(box_errors), "jaw_errors": np.array(jaw_errors),
              "group_errors": {group: np.array(e) for group, e in group_errors.items()}, "offset_px": offset.tolist(),
              "ms_per_image": 1000 * seconds / len(images)}
    if heads is not None:
        result.update(pose_errors=np.array(pose_errors).reshape(-1, 3), points_3d_errors=np.array(depth_errors))
    return result


def summarise(errors: np.ndarray, box_errors: np.ndarray, jaw_errors: np.ndarray | None = None, threshold: float = 0.10) -> dict:
    """`errors` (eye-corner NME over 68) and `box_errors` (51 inner points / box) per labelled face,
    inf for a miss: a miss counts as a failure in FR and AUC, and is left out of mean and median."""
    found = np.isfinite(errors)
    steps = np.linspace(0, threshold, 1001)
    ced = (errors[None, :] <= steps[:, None]).mean(axis=1)
    return {
        "found": float(found.mean()),
        "nme": float(errors[found].mean()) if found.any() else float("nan"),
        "fr10": float((errors > threshold).mean()),
        "auc10": float(np.trapezoid(ced, steps) / threshold),
        "box_mean": float(box_errors[found].mean()) if found.any() else float("nan"),
        "box_median": float(np.median(box_errors[found])) if found.any() else float("nan"),
        "box_fr10": float((~(box_errors <= threshold)).mean()),
        "jaw_nme": float(jaw_errors[found].mean()) if jaw_errors is not None and found.any() else float("nan"),
        "n": int(len(errors)),
    }


def load_test_split(root, limit: int | None = None, skip: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """The data set's test split: its images and (N, 68, 2) labels."""
    root = Path(root)
    if not root.is_dir():
        raise KeypointsError(f"data root {root} does not exist: set paths.data_dir=... or KEYPOINTS_DATA, or run `make data`")
    folder, csv_name = SPLITS["test"]
    return load_labelled(root / csv_name, root / folder, limit, skip)


def load_labelled(csv_path, folder, limit: int | None = None, skip: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """Any labelled folder in the Udacity CSV layout (file name, x0, y0, ..., x67, y67): its rows
    after the first `skip`, `limit` of them at most."""
    names, points = read_annotations(Path(csv_path))
    end = None if limit is None else skip + limit
    names, points = names[skip:end], points[skip:end]
    if not names:
        raise KeypointsError(f"{csv_path}: no rows left after skip={skip}")
    return [read_image(Path(folder) / name, upright=False) for name in names], points


COLUMNS = ["method", "faces found", "NME 68 (found)", "FR@0.10 (misses fail)", "AUC@0.10", "jaw NME (found)",
           "inner 51 / box: mean", "median", "FR@0.10", "mean offset x, y (px)", "ms / image"]


def table(rows: dict[str, dict]) -> str:
    # mean offset: a systematic shift from the labels' convention (dlib's points sit left of and above
    # them); a trained model that learned the convention shows next to none
    return tables.markdown(COLUMNS, [
        [name, f"{100 * r['found']:.1f}%", f"{100 * r['nme']:.2f}%", f"{100 * r['fr10']:.1f}%", f"{r['auc10']:.3f}",
         f"{100 * r['jaw_nme']:.2f}%", f"{100 * r['box_mean']:.2f}%", f"{100 * r['box_median']:.2f}%", f"{100 * r['box_fr10']:.1f}%",
         "{:+.2f}, {:+.2f}".format(*r["offset_px"]), f"{r['ms_per_image']:.1f}"]
        for name, r in rows.items()])


def group_table(results: dict[str, dict]) -> tuple[str, dict]:
    """Each point group's NME (its points' mean error by the face's eye-corner distance) on the faces
    that every method found: the fair comparison with a method that gives up on hard faces."""
    common = np.logical_and.reduce([np.isfinite(r["errors"]) for r in results.values()])
    rows = {name: {group: float(e[common].mean()) if common.any() else float("nan") for group, e in r["group_errors"].items()}
            for name, r in results.items() if "group_errors" in r}
    header = [f"point groups, NME on the {int(common.sum())} faces every method found"] + list(GROUPS)
    text = tables.markdown(header, [[name] + [f"{100 * v:.2f}%" for v in r.values()] for name, r in rows.items()])
    return text, {"faces": int(common.sum()), "methods": rows}


def against_first(results: dict[str, dict]) -> dict[str, dict]:
    """Each method after the first against the first (the reference: the shipped default when it is
    benchmarked), face by face on the faces both found: the mean difference of each face's NME 68 and
    inner-51 box error, and its standard error. Set means move by a few large-pose faces; what a
    change did is the paired difference, and whether it is more than noise, its standard error."""
    if len(results) < 2:
        return {}
    (reference, base), *others = results.items()
    paired = {}
    for name, r in others:
        both = np.isfinite(base["errors"]) & np.isfinite(r["errors"])
        n = int(both.sum())
        row = {"reference": reference, "faces": n}
        for key, label in (("errors", "nme"), ("box_errors", "box")):
            d = r[key][both] - base[key][both]
            row[label] = float(d.mean()) if n else float("nan")
            row[f"{label}_se"] = float(d.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
        paired[name] = row
    return paired


def paired_table(paired: dict[str, dict], set_name: str | None = None) -> list[list[str]]:
    pm = lambda r, k: f"{100 * r[k]:+.2f} ± {100 * r[k + '_se']:.2f}" if np.isfinite(r[k + "_se"]) else "-"  # noqa: E731
    return [([set_name] if set_name else []) + [name, r["reference"], str(r["faces"]), pm(r, "nme"), pm(r, "box")]
            for name, r in paired.items()]


PAIRED = ["method", "against", "faces both found", "NME 68: mean difference ± standard error", "inner 51 / box: mean difference ± standard error"]


SUMMARY = ["set", "method", "faces found", "NME 68 (found)", "FR@0.10", "jaw", "brows", "nose", "eyes", "mouth",
           "inner 51 / box: mean", "median", "FR@0.10"]


def write_summary(by_set: dict[str, dict[str, dict]], out: Path) -> str:
    """One table over several sets (benchmark sets=...): each method's headline figures and its point
    groups' NME (over its own found faces) a set, in summary.md."""
    rows = []
    for set_name, results in by_set.items():
        for name, r in results.items():
            s = summarise(r["errors"], r["box_errors"], r.get("jaw_errors"))
            found = np.isfinite(r["errors"])
            groups = [f"{100 * float(e[found].mean()):.2f}%" if found.any() else "-" for e in r["group_errors"].values()]
            rows.append([set_name, name, f"{100 * s['found']:.1f}%", f"{100 * s['nme']:.2f}%", f"{100 * s['fr10']:.1f}%", *groups,
                         f"{100 * s['box_mean']:.2f}%", f"{100 * s['box_median']:.2f}%", f"{100 * s['box_fr10']:.1f}%"])
    text = tables.markdown(SUMMARY, rows)
    paired = [row for set_name, results in by_set.items() for row in paired_table(against_first(results), set_name)]
    if paired:
        text += "\n\n" + tables.markdown(["set"] + PAIRED, paired)
    out.mkdir(parents=True, exist_ok=True)
    outputs.write_text(out / "summary.md", text + "\n")
    return text


def plot_ced(results: dict[str, dict], path: Path, threshold: float = 0.10) -> bool:
    """Cumulative error curves, both measures side by side; a miss never reaches the curve's top.
    False, and no file, without matplotlib (the lean install: its figures are in benchmark.md)."""
    try:
        from matplotlib.figure import Figure  # no pyplot: no backend to choose, no global figure state
    except ImportError:
        return False
    steps = np.linspace(0, threshold, 501)
    fig = Figure(figsize=(11, 4.5))
    axes = fig.subplots(1, 2)
    for ax, key, label in ((axes[0], "errors", "NME over 68 points, by eye corners (%)"),
                           (axes[1], "box_errors", "error over 51 inner points, by sqrt(box) (%)")):
        for name, r in results.items():
            ax.plot(steps * 100, [(r[key] <= s).mean() for s in steps], label=name)
        ax.set(xlabel=label, ylabel="share of labelled faces", xlim=(0, threshold * 100), ylim=(0, 1))
        ax.grid(alpha=0.3)
    axes[0].legend(loc="lower right", fontsize=7)
    fig.suptitle("Cumulative error, end to end (misses fail)")
    fig.tight_layout()
    with outputs.atomic_path(path) as temp:
        fig.savefig(temp, dpi=120, format=Path(path).suffix.lstrip(".") or "png")  # the temporary name has no suffix
    return True


def write_report(results: dict[str, dict], out: Path) -> str:
    out.mkdir(parents=True, exist_ok=True)
    rows = {name: {**summarise(r["errors"], r["box_errors"], r.get("jaw_errors")), "offset_px": r["offset_px"],
                   "ms_per_image": r["ms_per_image"]}
            for name, r in results.items()}
    groups, group_rows = group_table(results)
    for name, r in rows.items():
        r["groups_on_common_faces"] = group_rows["methods"].get(name)
    text = table(rows) + "\n\n" + groups
    paired = against_first(results)
    for name, r in paired.items():
        rows[name]["against_first"] = r
    if paired:
        text += "\n\n" + tables.markdown(PAIRED, paired_table(paired))
    if any("pose_errors" in r for r in results.values()):
        text += "\n\n" + head.table(results)
        for name, r in results.items():
            if "pose_errors" in r:
                rows[name]["head"] = head.summary(r)
    outputs.write_text(out / "benchmark.md", text + "\n")
    finite = lambda v: None if isinstance(v, float) and not np.isfinite(v) else v  # noqa: E731  JSON has no NaN
    plain = {name: {k: ({g: finite(x) for g, x in v.items()} if isinstance(v, dict) else finite(v)) for k, v in r.items()}
             for name, r in rows.items()}
    outputs.write_json(out / "benchmark.json", plain, indent=2)
    if not plot_ced(results, out / "ced.png"):
        print(f"{out}/ced.png: not drawn, matplotlib is not installed (pip install 'keypoints[train]')")
    return text
