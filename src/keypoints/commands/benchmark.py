"""End-to-end accuracy side by side on the test split: `keypoints benchmark ckpt_paths=[...]`,
or on any labelled folder: `keypoints benchmark labels=<csv> images=<folder>` (e.g. wild photos).

Prints and writes a markdown table (faces found, NME, FR@0.10, AUC@0.10, ms per image) and a
cumulative error curve (ced.png); see keypoints.benchmarks.accuracy for the protocol. On the wild sets, also
head pose and 3D points against AFLW2000-3D's labels (keypoints.benchmarks.head).
"""

from pathlib import Path

import hydra
from omegaconf import DictConfig

from keypoints.benchmarks import accuracy as benchmark
from keypoints.benchmarks import head
from keypoints.commands.cli import friendly_errors
from keypoints import benchmarks
from keypoints.detect import Detector, load_detector
from keypoints.core.errors import KeypointsError
from keypoints.inference.backends import explain
from keypoints.benchmarks.peers import DlibPeer


def labelled_sets(cfg) -> dict[str, tuple]:
    """name -> (images, labels, head labels or None) of each set this run scores."""
    if cfg.sets is None:
        if cfg.labels:  # any labelled folder in the Udacity CSV layout
            return {"": (*benchmark.load_labelled(cfg.labels, cfg.images, cfg.limit, cfg.skip), None)}
        return {"": (*benchmark.load_test_split(cfg.paths.data_dir, cfg.limit, cfg.skip), None)}
    names = list(cfg.named_sets) if cfg.sets == "all" else list(cfg.sets)
    unknown = [n for n in names if n not in cfg.named_sets]
    if unknown:
        raise KeypointsError(f"sets: unknown {unknown} (all, or some of {', '.join(cfg.named_sets)})")
    sets = {}
    for name in names:
        spec = cfg.named_sets[name]
        limit, skip = spec.get("limit", cfg.limit), spec.get("skip", 0)
        heads = head.load_heads(spec.labels, spec.pose, spec.points_3d, limit, skip) if spec.get("pose") else None
        sets[name] = (*benchmark.load_labelled(spec.labels, spec.images, limit, skip), heads)
    return sets


def method_sources(paths: list) -> list[str]:
    """What names each model in the tables: its file name, or the path as given where two share a
    name (e.g. two runs' model.onnx), so that no method's row replaces another's."""
    given = [str(p) for p in paths if p is not None]
    twice = sorted({p for p in given if given.count(p) > 1})
    if twice:
        raise KeypointsError(f"ckpt_paths: {twice[0]} is given twice")
    names = [Path(p).name for p in given]
    return ["shipped default" if p is None else Path(p).name if names.count(Path(p).name) == 1 else str(p) for p in paths]


@hydra.main(version_base="1.3", config_path="pkg://keypoints.conf", config_name="benchmark")
@friendly_errors(rules=(benchmarks.RULES,))
def main(cfg: DictConfig) -> None:
    sets = labelled_sets(cfg)
    methods = {}
    backend = "" if cfg.backend in ("torch", "auto") else f", {cfg.backend}"
    paths = ([None] if cfg.default_model else []) + ([cfg.ckpt_path] if cfg.ckpt_path else []) + list(cfg.ckpt_paths)
    for path, source in zip(paths, method_sources(paths)):
        detector = load_detector(cfg, ckpt_path=path)
        methods[f"{detector.architecture} ({source}{backend}), {type(detector.faces).__name__}"] = benchmark.ours(detector)
        print(f"{source}: {explain(cfg.backend, cfg.device, path)}")
    for name in cfg.also_faces:  # the shipped model behind other face stages, with their own defaults
        detector = Detector.from_checkpoint(faces=name, backend=cfg.backend, refine=cfg.detector.refine)
        methods[f"{detector.architecture} (shipped default{backend}), {type(detector.faces).__name__}"] = benchmark.ours(detector)
    if cfg.peers:
        try:
            methods["dlib HOG + 68-pt ERT"] = DlibPeer(**cfg.dlib)
        except KeypointsError as e:
            if cfg.peers != "auto":
                raise
            print(f"skipping dlib: {e}")
    summary = {}
    for set_name, (images, truths, heads) in sets.items():
        results = {}
        for name, method in methods.items():
            results[name] = benchmark.run_method(method, images, truths, heads)
            print(f"{set_name + ': ' if set_name else ''}{name}: done")
        out = Path(cfg.output) / set_name
        print(benchmark.write_report(results, out))
        print(f"wrote {out}/benchmark.md, benchmark.json{', ced.png' if (out / 'ced.png').is_file() else ''}")
        summary[set_name] = results
    if len(sets) > 1:
        text = benchmark.write_summary(summary, Path(cfg.output))
        print(text)
        print(f"wrote {cfg.output}/summary.md")
