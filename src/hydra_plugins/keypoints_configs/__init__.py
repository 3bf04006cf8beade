"""keypoints' config groups, found by Hydra's own plugin discovery: Hydra imports every module under the
`hydra_plugins` namespace package when it starts (as hydra-optuna-sweeper's and hydra-submitit-launcher's
are found), before it composes any config. This is the one place they are registered:

- PackagedConfigs: the package's YAML groups (keypoints/conf: paths, hydra, engine, video, overlays,
  runner) on the search path, behind every entry point's own (the checkout's conf/ finds them too);
- the `detector` group (detector=yunet | haar) and `inference: default`, built from the typed settings
  of keypoints.inference.config (each setting's default, meaning and check declared there once);
- the `${fast_precision:}` resolver the training experiments' `trainer.precision` uses.
"""

from omegaconf import OmegaConf

from keypoints.inference.config import PackagedConfigs, register  # noqa: F401  (PackagedConfigs: found by Hydra here)
from keypoints.training import fast_precision

register()
if not OmegaConf.has_resolver("fast_precision"):  # ${fast_precision:}: the training configs' precision, by the machine
    OmegaConf.register_new_resolver("fast_precision", fast_precision)
