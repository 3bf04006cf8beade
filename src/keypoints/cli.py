"""Entry-point plumbing: user mistakes end as one line on stderr, never a traceback."""

import functools
import sys

from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from keypoints.checks import check_config
from keypoints.errors import KeypointsError
from keypoints.inference import config as detector_settings  # registers the `detector` and `inference` groups with Hydra


def check_settings(cfg: DictConfig) -> None:
    """The check every entry point runs on its composed config before any work: the detector's
    settings (typed, keypoints.inference.config), then the others (keypoints.checks)."""
    detector_settings.check(cfg)
    check_config(cfg)


def friendly_errors(main):
    """Runs `main`; a KeypointsError ends it as `error: <one line>` on stderr and exit code 2. A
    Hydra config is checked first (the detector's settings, keypoints.inference.config; the others,
    keypoints.checks), before any work starts."""
    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            if args and isinstance(args[0], DictConfig):
                check_settings(args[0])
            return main(*args, **kwargs)
        except KeypointsError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
        except OmegaConfBaseException as e:  # a key the command needs, removed (~key) or of another shape
            key = getattr(e, "full_key", None)
            print(f"error: {key + ': ' if key else ''}{str(e).splitlines()[0]} (the config, as overridden on the command line)",
                  file=sys.stderr)
            sys.exit(2)

    return wrapper
