"""The detector's settings, typed: each with its one default and its check, read alike by
`keypoints.Detector(...)`, the CLIs (`keypoints detect`, `filter`, `serve`, `benchmark`, `export`) and
the server. Hydra composes them from here (ConfigStore), not from YAML files:

    detector=yunet | haar        the `detector` group: DetectorConfig (faces: keypoints.inference.faces.config)
    inference: default           ckpt_path, device, backend, max_megapixels, ort_threads: RuntimeConfig,
                                 at the top of the config (keypoints detect backend=onnxruntime ...)

A wrong value is one line naming its key, raised before any work (`check`, run by every entry point
through keypoints.commands.cli.friendly_errors); a key these configs do not have is refused by Hydra in one line.
"""

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.plugins.search_path_plugin import SearchPathPlugin
from omegaconf import DictConfig, OmegaConf

from keypoints.core.checks import BOOLEAN, check_device, check_value, number, one_of, optional, whole
from keypoints.inference.faces.config import STAGES, YuNetFaces, refuse_unknown
from keypoints.inference.backends import BACKENDS
from keypoints.core.io import MAX_MEGAPIXELS

DEFAULT_FACES = "yunet"  # the face stage when none is named (the configs' `detector: yunet` says the same)


@dataclass
class DetectorConfig:
    """The `detector` group: a face stage and the keypoint stage's passes (face-crop models)."""
    faces: Any = field(default_factory=YuNetFaces)  # keypoints.inference.faces.config.YuNetFaces or HaarFaces
    refine: int = 1  # passes re-framed on the model's own keypoints after the first (turned upright by their eyes)
    # ... each only for the faces whose frame moves by more than this share of the crop side (0: every face;
    # docs/RESULTS.md "Time budget")
    refine_min_move: float = 0.05
    # also average each pass with its mirror image (2x the work); only for models trained on mirror images:
    # the default model learned the labels' asymmetric convention without them
    flip: bool = False

    def __post_init__(self):
        check_value("detector.refine", self.refine, whole(0, 10))
        check_value("detector.refine_min_move", self.refine_min_move, number(0.0))
        check_value("detector.flip", self.flip, BOOLEAN)


@dataclass
class RuntimeConfig:
    """The model and what runs it, at the top of the inference CLIs' configs (`inference: default`)."""
    # the landmark model: a .ckpt from scripts/train.py, its run folder, or an exported .onnx; None: the shipped one
    ckpt_path: str | None = None
    device: str = "cpu"  # or cuda, cuda:1, mps (torch runs a checkpoint there)
    # auto: the shipped model's int8 copy under ONNX Runtime on the CPU (on a GPU: torch), a ckpt_path in torch
    # | torch | onnxruntime (the shipped model's float copy) | onnxruntime-int8; a .onnx ckpt_path runs as
    # written (keypoints.inference.backends, docs/RESULTS.md "Time budget")
    backend: str = "auto"
    # a photo above this (by its header) is reported and skipped (the server: refused, 413), never decoded;
    # also bounds a batch
    max_megapixels: float = MAX_MEGAPIXELS
    # ONNX Runtime's intra-op threads. None: as measured best (docs/RESULTS.md "Two looks at the photo"):
    # YuNet on one (its small inputs ran slower on two), the keypoint network on `workers` threads for
    # photos that go through on the calling thread (one photo at a time) and on one in each of a folder
    # run's worker threads, which already use the cores. A number: both networks on that many, always.
    ort_threads: int | None = None
    # threads that take a batch's photos in turn (Detector.detect_many: a folder run's batches), each photo
    # through the whole pipeline on one ONNX Runtime thread; None: one per core; 1: one photo after another.
    # Two on 2 cores: ~2x a folder's photos/s, the same points (docs/RESULTS.md "Time budget")
    workers: int | None = None

    def __post_init__(self):
        check_value("ckpt_path", self.ckpt_path, optional(((lambda v: isinstance(v, str) and v != ""), "a path")))
        check_device(self.device)
        check_value("backend", self.backend, one_of(*BACKENDS))
        check_value("max_megapixels", self.max_megapixels, number(0.01))
        check_value("ort_threads", self.ort_threads, optional(whole(1)))
        check_value("workers", self.workers, optional(whole(1)))

    @property
    def session_threads(self) -> int:
        """The intra-op threads of the sessions made at load (YuNet's, the network's for worker threads):
        `ort_threads`, or one when the Detector decides per call (ort_threads=None)."""
        return self.ort_threads or 1


class PackagedConfigs(SearchPathPlugin):
    """The package's config groups (keypoints/conf: paths, hydra, engine, video, overlays) behind every
    entry point's own: the checkout's conf/ (training, benchmarks) finds them without links or a
    `hydra.searchpath` in each file."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        search_path.append(provider="keypoints", path="pkg://keypoints.conf")


def register() -> None:
    """The `detector` group (one option per face stage) and `inference: default`, and the packaged
    groups' search path, for Hydra to compose."""
    Plugins.instance().register(PackagedConfigs)
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


register()
