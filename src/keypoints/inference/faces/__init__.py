"""Face stages: a photo -> face boxes (with the detector's score and the face's roll) that the
keypoint model frames. Every stage is a `FaceStage`; its settings are a typed config with their
defaults and checks (keypoints.inference.faces.config), which is also the Hydra config group `detector`
(detector=yunet | haar):

    faces = load_faces("yunet", min_score=0.8)   # or "haar", or a config with _target_
    for found in faces(bgr_image): print(found.box, found.score, found.roll)

YuNet (the default) is a small CNN that ONNX Runtime (or OpenCV) runs; the Haar cascade is the seed's.
"""

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from keypoints.core.errors import KeypointsError
from keypoints.inference.faces.config import KEY, STAGES, refuse_unknown


@dataclass(frozen=True)
class FoundFace:
    box: tuple[int, int, int, int]  # x, y, w, h in the photo's pixels, inside the photo
    score: float  # the detector's own confidence (YuNet: 0-1; Haar: its last stage's weight, unbounded)
    roll: float = 0.0  # degrees: the eye line's turn from level, clockwise on screen (y down) positive


class FaceStage(Protocol):
    """What the Detector needs of a face stage: faces in a BGR photo, and how its boxes sit on the
    training data's faces (keypoints.inference.faces.config: `framing`, `keypoint_box`, in box sides)."""
    framing: dict
    keypoint_box: dict
    align_roll: bool  # its faces' roll is worth turning the first crop upright by
    max_nose_offset: float | None  # ... and the keypoints' own roll, except past this profile
    thread_safe: bool  # several threads may call it at once (a Detector's `workers` then share it)

    def __call__(self, image: np.ndarray) -> list[FoundFace]: ...

    def use_threads(self, threads: int | None) -> None:
        """Run its network on this many intra-op threads (None: one per core): the Detector's `ort_threads`,
        one setting for both networks."""


def stage_config(spec, **overrides) -> DictConfig:
    """The typed config of a face stage: by name (its defaults), or a `detector.faces` node (a
    known stage's, checked against its type; another `_target_` is taken as it is), with `overrides`."""
    if isinstance(spec, str):
        if spec not in STAGES:
            raise KeypointsError(f"faces={spec!r}: unknown face stage (one of {', '.join(STAGES)})")
        spec = OmegaConf.structured(STAGES[spec])
    try:
        node = OmegaConf.create(spec) if not isinstance(spec, DictConfig) else spec
        known = {stage._target_: stage for stage in STAGES.values()}.get(node.get("_target_"))
        if known is not None and OmegaConf.get_type(node) is not known:  # a plain dict: typed, so a wrong key is refused
            node = OmegaConf.merge(OmegaConf.structured(known), node)
        return OmegaConf.merge(node, overrides)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or ""
        raise KeypointsError(f"{KEY}{'.' + key if key else ''}: {str(e).splitlines()[0]}") from None


def load_faces(spec="yunet", **overrides) -> FaceStage:
    """A face stage from a name, a config with `_target_` (the `faces` node of a `detector` config),
    or an already built stage; `overrides` change its settings (min_score=..., max_side=...)."""
    if callable(spec) and not isinstance(spec, (dict, DictConfig)):
        return spec
    cfg = stage_config(spec, **overrides)
    if OmegaConf.get_type(cfg) in STAGES.values():
        refuse_unknown(cfg, KEY)
        OmegaConf.to_object(cfg)  # each setting's check (keypoints.inference.faces.config): one line naming the key
    try:
        return instantiate(cfg, _convert_="all")
    except InstantiationException as e:
        cause = e.__cause__
        if isinstance(cause, KeypointsError):
            raise cause from None
        raise KeypointsError(f"{KEY}: {cause or e}".splitlines()[0]) from None
