"""Every value a user can set on a command line, checked in one place before any work starts:
a wrong one is one line naming the key and what is allowed, never a silent no-op, a clamp or a
traceback from deep inside a library. `friendly_errors` (keypoints.cli) runs `check_config` on the
composed config of every entry point; rules for keys a config does not have are skipped."""

import math
from numbers import Number

from omegaconf import DictConfig, OmegaConf

from keypoints.errors import KeypointsError


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


def one_of(*values):
    return (lambda v: v in values), "one of " + ", ".join(map(str, values))


def optional(rule):
    ok, allowed = rule
    return (lambda v: v is None or ok(v)), f"null or {allowed}"


def host_pattern(value) -> bool:
    """A Host: name as Starlette's TrustedHostMiddleware takes it: a name, `*.` a domain, or `*`."""
    return isinstance(value, str) and value.strip() != "" and "*" not in value[1:] \
        and (not value.startswith("*") or value == "*" or value.startswith("*."))


BOOLEAN = ((lambda v: isinstance(v, bool)), "true or false")

RULES = {
    # inference CLIs (the detector's own settings are typed and checked in keypoints.inference.config)
    "batch_photos": whole(1),
    "overwrite": BOOLEAN,
    "face_index": whole(0),
    "num_samples": whole(1),
    "num_test": whole(1),
    "tile": whole(16),
    "limit": optional(whole(1)),
    "skip": whole(0),
    "check_limit": optional(whole(1)),
    "check_skip": whole(0),
    "combine": one_of("most_confident", "weighted_mean"),  # scripts/pseudo_label.py (keypoints.teachers.labels.COMBINE)
    "weights_dtype": one_of("float32", "float16", "bfloat16"),  # scripts/ship_model.py
    "draw_pose": BOOLEAN,
    # videos (the `video` group, keypoints/conf/video/default.yaml)
    "video.detect_every": whole(1),
    "video.max_misses": whole(0),
    "video.match_iou": ((lambda v: is_number(v) and 0 < v <= 1), "an IoU in (0, 1]"),
    "video.max_faces": whole(1),
    "video.max_frames": optional(whole(1)),
    "video.threads": optional(whole(1)),
    "video.smoothing.enabled": BOOLEAN,
    "video.smoothing.min_cutoff": number(0.0, inclusive=False),
    "video.smoothing.beta": number(0.0),
    "video.smoothing.d_cutoff": number(0.0, inclusive=False),
    # scripts/benchmark_video.py
    "clip.width": whole(32),
    "clip.height": whole(32),
    "clip.fps": number(0.0, inclusive=False),
    "clip.frames": whole(2),
    "clip.noise_std": number(0.0),
    "clip.slide_px": number(0.0),
    "clip.skip": whole(0),
    # web demo (scripts/serve.py) and its load test
    "host": ((lambda v: isinstance(v, str) and v.strip() != ""), "a host name or address (127.0.0.1, 0.0.0.0, ...)"),
    "port": whole(0, 65535),
    "max_upload_mb": number(0.0, inclusive=False),
    "max_concurrency": whole(1),
    "max_queue": whole(0),
    "header_timeout_s": number(0.0, inclusive=False),
    "body_timeout_s": number(0.0, inclusive=False),
    "keep_alive_s": number(0.0, inclusive=False),
    "max_connections": whole(1),
    "allowed_hosts": optional(((lambda v: isinstance(v, list) and len(v) > 0 and all(map(host_pattern, v))),
                               "a list of host names (['example.org', '*.example.org', '127.0.0.1'], or ['*'] for any)")),
    "log_level": one_of("critical", "error", "warning", "info", "debug", "trace"),
    "requests": whole(1),
    "concurrency": whole(1),
    "slow": whole(0),
    "timeout_s": number(0.0, inclusive=False),
    # training
    "data.batch_size": whole(1),
    "data.eval_batch_size": whole(1),
    "data.num_workers": whole(0),
    "data.val_fraction": ((lambda v: isinstance(v, Number) and 0 < v < 1), "a share between 0 and 1"),
    "optimizer.lr": number(0.0),  # 0 keeps the weights as they are (a test of init_from does)
    "optimizer.weight_decay": number(0.0),
    "trainer.max_epochs": whole(-1),
    "trainer.devices": ((lambda v: v == "auto" or (isinstance(v, int) and v >= -1) or isinstance(v, (list, str))), "auto, -1 or a count"),
    "seed": optional(whole(0)),
    # export, benchmarks
    "calibration.photos": whole(1),
    "warmup": whole(0),
    "repeats": whole(1),
    "batch": whole(1),
}


def check_value(name: str, value, rule) -> None:
    """One line naming `name` when `value` breaks `rule` (one of RULES' values); also for Python
    arguments that mirror a config key (keypoints.Detector's refine and flip)."""
    ok, allowed = rule
    if is_number(value) and not math.isfinite(value) and not ok(value):
        raise KeypointsError(f"{name}={value!r}: must be a finite number ({allowed})")
    if not ok(value):
        raise KeypointsError(f"{name}={value!r}: must be {allowed}")


def check_config(cfg: DictConfig) -> None:
    missing = missing_keys(OmegaConf.to_container(cfg, resolve=False))
    if missing:
        raise KeypointsError(f"{missing[0]}: required, give it on the command line as {missing[0]}=<value>")
    for key, (ok, allowed) in RULES.items():
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
    runtime's to say: torch's (keypoints.predictors.check_torch_device), which a GPU runs the model in."""
    device_type(device)
