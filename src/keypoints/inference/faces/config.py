"""The face stages' settings, typed, each with its default and its check (the `detector.faces` node;
keypoints.inference.config registers them with Hydra as the `detector` group: detector=yunet | haar).

A wrong value is one line naming its key (`detector.faces.min_score=2.0: must be ...`), raised when
the config becomes these objects (OmegaConf.to_object, or a constructor call) - before any work.
A key a stage does not have is refused by Hydra (struct mode) or OmegaConf.merge, also in one line.
"""

from dataclasses import dataclass, field, fields, is_dataclass

from omegaconf import DictConfig, OmegaConf

from keypoints.core.checks import BOOLEAN, between, check_value, finite, is_number, number, optional, positive, whole
from keypoints.core.errors import KeypointsError

KEY = "detector.faces"


def check(key: str, value, rule) -> None:
    check_value(f"{KEY}.{key}", value, rule)


def refuse_unknown(node: DictConfig, key: str) -> None:
    """One line on a key a typed node does not have: Hydra lets `+key=...` add one, which becoming
    the dataclass (OmegaConf.to_object) would drop without a word."""
    kind = OmegaConf.get_type(node)
    if not is_dataclass(kind):
        return
    names = [f.name for f in fields(kind)]
    for name in node:
        if name not in names:
            raise KeypointsError(f"{key}.{name}: not a setting of {key} (one of {', '.join(n for n in names if n != '_target_')})")
        child = node._get_node(name)
        if isinstance(child, DictConfig):
            refuse_unknown(child, f"{key}.{name}")


@dataclass
class Framing:
    """How a face box sits on the seed's whole-frame crop, in box sides (scripts/measure_framing.py)."""
    scale: float
    shift_x: float
    shift_y: float

    def __post_init__(self):
        check("framing.scale", self.scale, (lambda v: positive(v) and v <= 20, "a number > 0 and <= 20 (box sides)"))  # 0 divides by zero
        for key in ("shift_x", "shift_y"):
            check(f"framing.{key}", getattr(self, key), between(-10, 10, "box sides"))


@dataclass
class KeypointBox:
    """The keypoints' bounding box (longer side, centre shift) a face box predicts, in box sides and
    the face's upright frame: what face-crop models are framed on (scripts/measure_framing.py)."""
    side: float
    shift_x: float
    shift_y: float

    def __post_init__(self):
        check("keypoint_box.side", self.side, (lambda v: positive(v) and v <= 20, "a number > 0 and <= 20 (box sides)"))
        for key in ("shift_x", "shift_y"):
            check(f"keypoint_box.{key}", getattr(self, key), between(-10, 10, "box sides"))


@dataclass
class YuNetFaces:
    """The default face stage: YuNet, a small CNN face detector (keypoints.inference.faces.yunet.YuNet; its
    model file ships in the package, Apache-2.0). detector=yunet, or keypoints.Detector(faces="yunet")."""
    _target_: str = "keypoints.inference.faces.yunet.YuNet"
    model: str | None = None  # None: the shipped YuNet n (yunet_n_dynamic.onnx for onnxruntime, yunet_n_640_640.onnx for opencv); or another export
    # what runs it: onnxruntime (about twice OpenCV's speed here, the same faces: docs/RESULTS.md "Time budget")
    # or opencv (cv2.FaceDetectorYN)
    runtime: str = "onnxruntime"
    min_score: float = 0.6  # faces whose YuNet score (0-1, each face's `score`) is below this are dropped
    nms_threshold: float = 0.3  # boxes overlapping more than this IoU are merged
    top_k: int = 5000  # at most this many candidates before merging
    max_side: int = 640  # YuNet sees a copy of the photo no longer than this ...
    # ... and first at most this share of its size: YuNet's time goes with its input's area (0.5: a quarter).
    # It finds faces down to ~10 px of its input, and scores some faces lower on a smaller copy, hence ...
    scale: float = 0.5
    # ... a second look: the first look's candidates scoring at least this (and under min_score) are looked at
    # again at the full size on a crop around each, and a photo where it finds none gets the full-size look.
    # On 1,790 unlabelled AFLW photos the face stage went 5.3-6.0 -> 2.1-2.7 ms (three runs), 1,813 -> 1,834 faces (5 lost, 26 new;
    # one look at 0.5: 1,807, 25 lost); chosen there, on the Udacity training split and LFW (scripts/benchmark_faces.py
    # parts=[settings], docs/RESULTS.md "Two looks at the photo"). null: one look, the copy's faces only (loses faces)
    recheck_score: float | None = 0.1
    align_roll: bool = True  # each face's roll from its eyes: the first crop is turned upright ...
    # ... unless its nose tip is more than this many eye distances beside the eyes' middle (a profile; chosen on
    # 300w dev and the first wild half with the 300-W default: dev 4.20% either way, wild 3.86 / 2.23 / 2.0%
    # against 4.12 / 2.23 / 2.0% with None, which turns every face)
    max_nose_offset: float | None = 0.8
    # How this detector's boxes sit on the training data's faces, in box sides, in the face's upright frame
    # (scripts/measure_framing.py detector=yunet): the seed's whole-frame crop ...
    framing: Framing = field(default_factory=lambda: Framing(scale=1.981, shift_x=0.006, shift_y=0.03))
    # ... and the keypoint box that face-crop models are framed on, on the default model's training photos in
    # 300-W's markup (measure_framing.py labels=<300w>/train_keypoints.csv images=<300w>/train; on the Udacity
    # frames: side 0.805, shift_y 0.138). 300w dev: 4.24% vs 4.26%.
    keypoint_box: KeypointBox = field(default_factory=lambda: KeypointBox(side=0.769, shift_x=0.003, shift_y=0.129))

    def __post_init__(self):
        check("runtime", self.runtime, (lambda v: v in ("onnxruntime", "opencv"), "onnxruntime or opencv"))
        check("min_score", self.min_score, ((lambda v: is_number(v) and 0 <= v <= 1), "a YuNet score between 0 and 1"))
        check("nms_threshold", self.nms_threshold, ((lambda v: is_number(v) and 0 < v <= 1), "an IoU in (0, 1]"))
        check("top_k", self.top_k, whole(1))
        check("max_side", self.max_side, whole(32))
        check("scale", self.scale, ((lambda v: is_number(v) and 0 < v <= 1), "a share of the photo's size in (0, 1]"))
        check("recheck_score", self.recheck_score, optional(((lambda v: is_number(v) and 0 <= v <= 1), "a YuNet score between 0 and 1")))
        check("align_roll", self.align_roll, BOOLEAN)
        check("max_nose_offset", self.max_nose_offset, optional(number(0.0, inclusive=False)))


@dataclass
class HaarFaces:
    """The seed's face stage: OpenCV's Haar cascade (keypoints.inference.faces.haar.HaarCascade; OpenCV 4 only).
    detector=haar, or keypoints.Detector(faces="haar")."""
    _target_: str = "keypoints.inference.faces.haar.HaarCascade"
    cascade: str = "haarcascade_frontalface_default.xml"  # a file in cv2.data.haarcascades, or a path
    scale_factor: float = 1.1
    min_neighbors: int = 5
    min_size: int = 30  # px, in the copy Haar sees
    min_size_fraction: float = 0.05  # ... and at least this share of the photo's shorter side
    max_side: int = 1000  # Haar sees a copy no longer than this (at full size it "finds" faces in drums and shirts)
    # degrees: also search copies turned by these (the cascade finds faces within ~15 degrees of upright); each
    # costs one more cascade pass. [0]: upright faces only
    angles: list[float] = field(default_factory=lambda: [0.0, -25.0, 25.0])
    turned_min_neighbors: int = 7  # turned copies show more false faces: min_neighbors for them
    min_score: float | None = None  # drop faces whose score (the cascade's last-stage weight, unbounded) is below this
    # the seed's whole-frame crop and the keypoint box (as YuNetFaces'), measured with detector=haar
    framing: Framing = field(default_factory=lambda: Framing(scale=2.16, shift_x=0.0, shift_y=0.05))
    # on 300w/train (Udacity frames: 0.878, -0.006, 0.158)
    keypoint_box: KeypointBox = field(default_factory=lambda: KeypointBox(side=0.869, shift_x=-0.003, shift_y=0.144))

    def __post_init__(self):
        check("scale_factor", self.scale_factor, ((lambda v: is_number(v) and v > 1), "a number > 1"))
        for key, low in (("min_neighbors", 0), ("turned_min_neighbors", 0), ("min_size", 1), ("max_side", 1)):
            check(key, getattr(self, key), whole(low))
        check("min_size_fraction", self.min_size_fraction, ((lambda v: is_number(v) and 0 <= v < 1), "a share in [0, 1)"))
        check("angles", self.angles, ((lambda v: isinstance(v, (list, tuple)) and len(v) > 0 and all(map(finite, v))),
                                      "a non-empty list of degrees, e.g. [0, -25, 25]"))
        check("min_score", self.min_score, optional((finite, "a number")))


# the `detector` group's options: detector=<name>, keypoints.Detector(faces="<name>")
STAGES = {"yunet": YuNetFaces, "haar": HaarFaces}
