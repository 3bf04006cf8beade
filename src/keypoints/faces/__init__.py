"""Face stages: a photo -> face boxes (with the detector's score and the face's roll) that the
keypoint model frames. Each stage is configured by one file, `keypoints/conf/detector/<name>.yaml`,
which is also the Hydra config group `detector` (detector=yunet | haar):

    faces = load_faces("yunet")                 # or "haar", or a config with _target_
    for found in faces(bgr_image): print(found.box, found.score, found.roll)

YuNet (the default) is a small CNN that OpenCV runs itself; the Haar cascade is the seed's.
"""

from dataclasses import dataclass
from importlib import resources

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from keypoints.errors import KeypointsError

STAGES = ("yunet", "haar")


@dataclass(frozen=True)
class FoundFace:
    box: tuple[int, int, int, int]  # x, y, w, h in the photo's pixels, inside the photo
    score: float  # the detector's own confidence (YuNet: 0-1; Haar: its last stage's weight, unbounded)
    roll: float = 0.0  # degrees: the eye line's turn from level, clockwise on screen (y down) positive


def check_knob(ok: bool, key: str, value, allowed: str) -> None:
    """One line naming a face-stage knob whose value is not allowed."""
    if not ok:
        raise KeypointsError(f"detector.faces.{key}={value!r}: must be {allowed}")


def stage_config(name: str) -> DictConfig:
    """The `detector` group's file for `name`, shipped inside the package."""
    if name not in STAGES:
        raise KeypointsError(f"faces={name!r}: unknown face stage (one of {', '.join(STAGES)})")
    return OmegaConf.load(resources.files("keypoints.conf") / "detector" / f"{name}.yaml")


def load_faces(spec="yunet", **overrides):
    """A face stage from a name (its config file's defaults), a config with `_target_` (the
    `faces` node of a `detector` config), or an already built stage; `overrides` change its knobs."""
    if callable(spec) and not isinstance(spec, (dict, DictConfig)):
        return spec
    cfg = stage_config(spec).faces if isinstance(spec, str) else OmegaConf.create(spec)
    cfg = OmegaConf.merge(cfg, overrides)
    try:
        return instantiate(cfg, _convert_="all")
    except InstantiationException as e:
        cause = e.__cause__
        if isinstance(cause, KeypointsError):
            raise cause from None
        raise KeypointsError(f"detector.faces: {cause or e}".splitlines()[0]) from None

