"""The detector's settings, typed: each with its one default and its check, read alike by
`keypoints.Detector(...)`, the CLIs (`keypoints detect`, `filter`, `serve`, `benchmark`, `export`) and
the server. Hydra composes them from here (ConfigStore, registered by Hydra's plugin discovery:
hydra_plugins/keypoints_configs), not from YAML files:

    detector=yunet | haar        the `detector` group: DetectorConfig (faces: keypoints.inference.faces.config)
    inference: default           ckpt_path, device, backend, max_megapixels, ort_threads: RuntimeConfig,
                                 at the top of the config (keypoints detect backend=onnxruntime ...)

A wrong value is one line naming its key, raised before any work (`check`, run by every entry point
through keypoints.commands.cli.friendly_errors); a key these configs do not have is refused by Hydra in one line.
"""

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.config_store import ConfigStore
from hydra.plugins.search_path_plugin import SearchPathPlugin
from omegaconf import DictConfig, OmegaConf

from keypoints.core.errors import KeypointsError
from keypoints.core.checks import BOOLEAN, check_device, check_value, number, one_of, optional, whole
from keypoints.inference.faces.config import STAGES, YuNetFaces, refuse_unknown
from keypoints.inference.backends import BACKENDS, resolve_backend
from keypoints.core.outputs import file_identity
from keypoints.core.io import MAX_MEGAPIXELS

MAX_THREADS = 1024  # ort_threads, workers: more is a typo (ONNX Runtime's pybind refuses 99999999999 with a TypeError)
DEFAULT_FACES = "yunet"  # the face stage when none is named (the configs' `detector: yunet` says the same)


def setting(default, meaning: str, **kwargs):
    """A setting's one declaration: its default and its meaning (printed by `keypoints <command> --help`);
    its check sits in the dataclass's __post_init__."""
    if callable(default) and not isinstance(default, type):
        return field(default_factory=default, metadata={"meaning": meaning}, **kwargs)
    return field(default=default, metadata={"meaning": meaning}, **kwargs)


@dataclass
class DetectorConfig:
    """The `detector` group: a face stage and the keypoint stage's passes (face-crop models)."""
    faces: Any = setting(YuNetFaces, "the face stage: detector=yunet | haar, its knobs under detector.faces.*")
    refine: int = setting(1, "passes re-framed on the model's own keypoints after the first (upright by their eyes)")
    # docs/RESULTS.md "Time budget"
    refine_min_move: float = setting(0.05, "a face gets its next pass only when its frame moves by more than this share of the crop side (0: every face)")
    # the default model learned the labels' asymmetric convention without mirror images
    flip: bool = setting(False, "also average each pass with its mirror image (2x the work; for models trained on mirror images)")

    def __post_init__(self):
        check_value("detector.refine", self.refine, whole(0, 10))
        check_value("detector.refine_min_move", self.refine_min_move, number(0.0))
        check_value("detector.flip", self.flip, BOOLEAN)


@dataclass
class RuntimeConfig:
    """The model and what runs it, at the top of the inference CLIs' configs (`inference: default`)."""
    ckpt_path: str | None = setting(None, "the landmark model: a .ckpt from scripts/train.py, its run folder, or an exported .onnx; null: the shipped one")
    device: str = setting("cpu", "cpu, cuda, cuda:1 or mps (torch runs a checkpoint there)")
    # keypoints.inference.backends, docs/RESULTS.md "Time budget"
    backend: str = setting("auto", "auto (the shipped model's int8 or float copy on the CPU, the faster here: measured once, cached; a checkpoint in torch) | torch | onnxruntime | onnxruntime-int8")
    max_megapixels: float = setting(MAX_MEGAPIXELS, "a photo above this (by its header) is reported and skipped (the server: 413), never decoded; also bounds a batch")
    # docs/RESULTS.md "Two looks at the photo": YuNet ran slower on two threads, the network faster
    ort_threads: int | None = setting(None, "ONNX Runtime's threads for both networks; null: as measured best (YuNet on one, the network on `workers`)")
    # two on 2 cores: ~2x a folder's photos/s, the same points (docs/RESULTS.md "Time budget")
    workers: int | None = setting(None, "threads that take a batch's photos in turn, each on one ONNX Runtime thread; null: one per core")

    def __post_init__(self):
        check_value("ckpt_path", self.ckpt_path, optional(((lambda v: isinstance(v, str) and v != ""), "a path")))
        check_device(self.device)
        check_value("backend", self.backend, one_of(*BACKENDS))
        check_value("max_megapixels", self.max_megapixels, number(0.01))
        check_value("ort_threads", self.ort_threads, optional(whole(1, MAX_THREADS)))
        check_value("workers", self.workers, optional(whole(1, MAX_THREADS)))

    @property
    def max_pixels(self) -> int:
        """`max_megapixels` as the pixel count every reader checks (keypoints.core.io.check_pixels)."""
        return int(self.max_megapixels * 1e6)

    @property
    def session_threads(self) -> int:
        """The intra-op threads of the sessions made at load (YuNet's, the network's for worker threads):
        `ort_threads`, or one when the Detector decides per call (ort_threads=None)."""
        return self.ort_threads or 1


# The settings a Detector takes by keyword (keypoints.Detector(refine=2, backend="onnxruntime", ...)): every
# field above but the face stage (its own argument) and the model (the path given to from_file/from_checkpoint)
DETECTOR_KEYS = tuple(f.name for f in fields(DetectorConfig) if f.name != "faces")
RUNTIME_KEYS = tuple(f.name for f in fields(RuntimeConfig) if f.name != "ckpt_path")


def split_settings(settings: dict) -> tuple[DetectorConfig, RuntimeConfig]:
    """A Detector's keyword settings as the two checked configs, the rest at their defaults; one line
    naming a key that is no setting."""
    unknown = sorted(set(settings) - set(DETECTOR_KEYS) - set(RUNTIME_KEYS))
    if unknown:
        raise KeypointsError(f"{unknown[0]}: not a detector setting (settings: {', '.join(DETECTOR_KEYS + RUNTIME_KEYS)})")
    return (DetectorConfig(faces=None, **{k: v for k, v in settings.items() if k in DETECTOR_KEYS}),
            RuntimeConfig(**{k: v for k, v in settings.items() if k in RUNTIME_KEYS}))


def partition(options: dict) -> tuple[dict, dict]:
    """Keyword arguments of from_file / from_checkpoint: (the Detector's settings, the face stage's knobs)."""
    keys = set(DETECTOR_KEYS) | set(RUNTIME_KEYS)
    return ({k: v for k, v in options.items() if k in keys}, {k: v for k, v in options.items() if k not in keys})


def keywords(detector: DetectorConfig, runtime: RuntimeConfig) -> dict:
    """The two checked configs as a Detector's keyword settings."""
    return {**{k: getattr(detector, k) for k in DETECTOR_KEYS}, **{k: getattr(runtime, k) for k in RUNTIME_KEYS}}


def settings_of(cfg: DictConfig) -> dict:
    """A composed config's detector and runtime settings as a Detector's keywords (each checked)."""
    return keywords(detector_config(cfg), runtime_config(cfg))


# Settings that change how fast a photo goes through, never its points: not part of what made an output
SPEED_ONLY = ("ort_threads", "workers")


# What a face's output holds (docs/JSON.md), as one number that resume compares: bumped whenever a release
# changes it, so outputs of an older release are made again. 2: keypoints_3d, and the pose from the 3D face fit.
OUTPUT_FORMAT = 2


def provenance(cfg: DictConfig, ckpt_path) -> str:
    """What makes a photo's output under a composed config, as one short hash that resume compares: the
    model file (its path, size and modification time; a run folder's metrics.json, which names its best
    checkpoint), every detector setting that changes points, the face stage's settings, the output's format
    (OUTPUT_FORMAT). Another model, backend, detector= or min_score= gives another hash; ort_threads= or
    workers= do not."""
    settings = settings_of(cfg)
    _, path = resolve_backend(settings["backend"], settings["device"], ckpt_path)
    model = Path(path) if path is not None else None
    if model is not None and model.is_dir():
        model = model / "metrics.json"
    made = {"format": OUTPUT_FORMAT, "model": model and [str(model.resolve()), *(file_identity(model) or [None, None])],
            "settings": {k: v for k, v in settings.items() if k not in SPEED_ONLY},
            "faces": OmegaConf.to_container(cfg.detector.faces, resolve=True)}
    return hashlib.sha256(json.dumps(made, sort_keys=True, default=str).encode()).hexdigest()[:16]


def describe() -> str:
    """Every setting with its default and meaning, as `keypoints <command> --help` prints them."""
    rows = [(f"detector.{f.name}" if f.name != "faces" else "detector", DEFAULT_FACES if f.name == "faces" else f.default, f.metadata["meaning"])
            for f in fields(DetectorConfig)] + [(f.name, f.default, f.metadata["meaning"]) for f in fields(RuntimeConfig)]
    width = max(len(key) for key, _, _ in rows)
    return "\n".join(f"  {key:<{width}}  {'null' if default is None else str(default).lower() if isinstance(default, bool) else default!s:<6}  {meaning}"
                     for key, default, meaning in rows)


class PackagedConfigs(SearchPathPlugin):
    """The package's config groups (keypoints/conf: paths, hydra, engine, video, overlays) behind every
    entry point's own: the checkout's conf/ (training, benchmarks) finds them without links or a
    `hydra.searchpath` in each file."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        search_path.append(provider="keypoints", path="pkg://keypoints.conf")


def register() -> None:
    """The `detector` group (one option per face stage) and `inference: default` in Hydra's ConfigStore;
    called once, by Hydra's plugin discovery (hydra_plugins/keypoints_configs, which also hands Hydra
    PackagedConfigs)."""
    store = ConfigStore.instance()
    for name, stage in STAGES.items():
        store.store(group="detector", name=name, node=DetectorConfig(faces=stage()))
    # a plain dict at the top: a typed node there would type the whole config (every other key refused);
    # RuntimeConfig checks these values (`check`)
    store.store(group="inference", name="default", node=asdict(RuntimeConfig()), package="_global_")


def detector_config(cfg: DictConfig) -> DetectorConfig:
    """A composed config's `detector` node as the checked object (a plain node is typed first)."""
    node = cfg.detector
    if OmegaConf.get_type(node) is not DetectorConfig:
        node = OmegaConf.merge(OmegaConf.structured(DetectorConfig(faces=None)), node)
    refuse_unknown(node, "detector")
    return OmegaConf.to_object(node)


def runtime_config(cfg: DictConfig) -> RuntimeConfig:
    """The runtime settings a config has (the rest at their defaults), checked."""
    return RuntimeConfig(**{f.name: cfg[f.name] for f in fields(RuntimeConfig) if f.name in cfg})


def check(cfg: DictConfig) -> None:
    """Every detector setting of a composed config, one line on the first wrong one."""
    if "detector" in cfg and cfg.detector is not None:
        detector_config(cfg)
    runtime_config(cfg)
