"""Entry-point plumbing: user mistakes end as one line on stderr, never a traceback."""

import functools
import sys

from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from keypoints.core.checks import check_config
from keypoints.core.errors import KeypointsError
from keypoints.inference import config as detector_settings


def check_settings(cfg: DictConfig, rules: tuple[dict, ...] = ()) -> None:
    """The check every entry point runs on its composed config before any work: the detector's
    settings (typed, keypoints.inference.config), then the tables of rules it names (keypoints.core.checks)."""
    detector_settings.check(cfg)
    check_config(cfg, *rules)


def friendly_errors(main=None, *, rules: tuple[dict, ...] = ()):
    """Runs `main`; a KeypointsError ends it as `error: <one line>` on stderr and exit code 2. A
    Hydra config is checked first, before any work starts (`check_settings`): `@friendly_errors` or
    `@friendly_errors(rules=(keypoints.inference.runner.RULES, ...))`, the tables beside the settings it reads."""
    if main is None:
        return functools.partial(friendly_errors, rules=rules)

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            if args and isinstance(args[0], DictConfig):
                check_settings(args[0], rules)
            return main(*args, **kwargs)
        except KeypointsError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
        except OmegaConfBaseException as e:  # a key the command needs, removed (~key) or of another shape
            key = getattr(e, "full_key", None)
            print(f"error: {key + ': ' if key else ''}{str(e).splitlines()[0]} (the config, as overridden on the command line)",
                  file=sys.stderr)
            sys.exit(2)

    wrapper.rules = rules  # tests/test_configs.py: every key of them is in a config of an entry point that names it
    return wrapper
