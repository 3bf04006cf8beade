"""The words of every setting's check: a rule is (test, what is allowed), and a wrong value is one
line naming the key and what is allowed, never a silent no-op, a clamp or a traceback from deep
inside a library. The rules live beside the settings they check: a table `RULES` in the module
that reads them (keypoints.inference.runner, keypoints.inference.video, keypoints.web.app, ...), or the typed configs'
own checks (keypoints.inference.config). Each entry point names its tables
(`@friendly_errors(rules=...)`, keypoints.commands.cli), which run on its composed config before any work."""

import math
from numbers import Number

from omegaconf import DictConfig, OmegaConf

from keypoints.core.errors import KeypointsError


def whole(low: int, high: int | None = None):
    def ok(v) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= low and (high is None or v <= high)
    return ok, f"a whole number >= {low}" + ("" if high is None else f" and <= {high}")


def is_number(value) -> bool:
    """A real number: not a bool, not NaN."""
    return isinstance(value, Number) and not isinstance(value, bool) and value == value


def number(low: float, inclusive: bool = True):
    def ok(v) -> bool:  # finite too: inf passes every comparison and breaks the first int() or division
        return is_number(v) and math.isfinite(v) and (v >= low if inclusive else v > low)
    return ok, f"a number {'>=' if inclusive else '>'} {low}"


def positive(v) -> bool:
    return is_number(v) and math.isfinite(v) and v > 0


def finite(v) -> bool:
    return is_number(v) and math.isfinite(v)


def between(low: float, high: float, unit: str = ""):
    """A finite number in [low, high]: a setting measured in some unit has a sane range, and a value far
    out of it (1e300) overflows later, far from the key that caused it."""
    def ok(v) -> bool:
        return finite(v) and low <= v <= high
    return ok, f"a number from {low:g} to {high:g}{f' ({unit})' if unit else ''}"


def one_of(*values):
    return (lambda v: v in values), "one of " + ", ".join(map(str, values))


def optional(rule):
    ok, allowed = rule
    return (lambda v: v is None or ok(v)), f"null or {allowed}"


BOOLEAN = ((lambda v: isinstance(v, bool)), "true or false")

def check_value(name: str, value, rule) -> None:
    """One line naming `name` when `value` breaks `rule`; also for Python arguments that mirror a
    config key (keypoints.Detector's refine and flip)."""
    ok, allowed = rule
    if is_number(value) and not math.isfinite(value) and not ok(value):
        raise KeypointsError(f"{name}={value!r}: must be a finite number ({allowed})")
    if not ok(value):
        raise KeypointsError(f"{name}={value!r}: must be {allowed}")


def check_config(cfg: DictConfig, *tables: dict) -> None:
    """The `???` keys left, then each key of `tables` the config has (a table serves several entry
    points: tests/test_configs.py checks that each of its keys is in one of them)."""
    missing = missing_keys(OmegaConf.to_container(cfg, resolve=False))
    if missing:
        raise KeypointsError(f"{missing[0]}: required, give it on the command line as {missing[0]}=<value>")
    for key, (ok, allowed) in ((k, rule) for table in tables for k, rule in table.items()):
        try:
            value = OmegaConf.select(cfg, key, throw_on_missing=False)
        except Exception:  # an interpolation that does not resolve: the script's own error says which
            continue
        if value is None and OmegaConf.select(cfg, key, default="absent") == "absent":
            continue
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value)
        check_value(key, value, (ok, allowed))
    if "device" in cfg:
        check_device(cfg.device)


def missing_keys(node, prefix: str = "") -> list[str]:
    """The keys left `???` (detect's input=...), unresolved; Hydra's own node, composed alongside in tests, is Hydra's."""
    if isinstance(node, dict):
        return [k for key, value in node.items() if f"{prefix}{key}" != "hydra"
                for k in missing_keys(value, f"{prefix}{key}.")]
    return [prefix.rstrip(".")] if node == "???" else []


DEVICES = ("cpu", "cuda", "mps")


def device_type(device) -> str:
    """"cpu", "cuda" or "mps" from a device string ("cuda:1") or a torch.device, without torch."""
    kind = str(device).split(":")[0].strip().lower()
    if kind not in DEVICES or not isinstance(device, str) and type(device).__module__ != "torch":
        raise KeypointsError(f"device={device!r}: not a device (one of cpu, cuda, cuda:N, mps)")
    return kind


def check_device(device) -> None:
    """A device that is none is one line, before any work. Whether this machine has it is the
    runtime's to say: torch's (keypoints.training.predictors.check_torch_device), which a GPU runs the model in."""
    device_type(device)
