"""The `keypoints` command (and `python -m keypoints`): `keypoints <command> key=value ...`.

Each command is a Hydra app on a config that ships in the package (keypoints/conf/<command>.yaml);
scripts/<command>.py in a checkout runs the same code on the same file, so the two cannot drift.
Listing the commands imports neither torch nor Hydra: a command's module is imported only when it
runs, by its name through importlib (`run`). Training stays a checkout's job: scripts/train.py, conf/.
"""

import argparse
import difflib
import functools
import importlib
import os
import sys
import textwrap
from contextlib import contextmanager
from importlib import resources
from importlib.metadata import PackageNotFoundError, version

# name -> (what it does, its main keys), as `keypoints --help` lists them; tests/test_commands.py
# checks every key against the composed config. `keypoints <command> --help` prints all of them.
COMMANDS = {
    "detect": ("faces, 68 keypoints and head pose: a photo, a folder, a video, a webcam (input=0)",
               "input=PATH output=DIR ckpt_path=CKPT backend=torch|onnxruntime|onnxruntime-int8 detector=yunet|haar "
               "overwrite=true draw_pose=true batch_photos=16 workers=N max_megapixels=100 engine=ray (keypoints[scale])"),
    "filter": ("an overlay on every face (sunglasses, moustache, hat or an RGBA PNG)",
               "input=PATH output=DIR overlay=sunglasses|moustache|hat|PNG overlay_dir=DIR ckpt_path=CKPT backend=... "
               "overwrite=true"),
    "serve": ("the web demo and REST API (POST /api/detect, /api/filter); needs keypoints[web]",
              "host=127.0.0.1 port=8000 max_upload_mb=10 max_concurrency=2 ckpt_path=CKPT backend=... log_level=info"),
    "export": ("a checkpoint as one ONNX or TorchScript file, or int8 ONNX; needs keypoints[onnx]",
               "ckpt_path=CKPT output=FILE overwrite=true format=onnx|torchscript quantize=int8 paths.data_dir=DIR"),
    "benchmark": ("accuracy end to end (NME, FR@0.10, AUC) on a labelled folder or the data set's test split",
                  "labels=CSV images=DIR output=DIR ckpt_paths=[CKPT,...] backend=... limit=N paths.data_dir=DIR"),
}
# A command's module that needs an extra: the package it misses -> the extra that brings it
EXTRAS = {"torch": "train", "lightning": "train", "albumentations": "train", "torchmetrics": "train", "onnx": "train",
          "onnxscript": "train", "matplotlib": "train", "wandb": "train"}
# Overrides that keep Hydra's run folder (.hydra/, <command>.log) away: a command told where to write
# (output=...), or one that writes no file (serve), writes nothing else. hydra.run.dir=... asks for one.
NO_RUN_FOLDER = ["hydra.run.dir=.", "hydra.output_subdir=null", "hydra/job_logging=stdout"]
WRITES_NOTHING = {"serve"}


def run(name: str, overrides: list[str]) -> None:
    """Runs command `name` on Hydra overrides (and Hydra's own flags: --help, --cfg job, -m ...).
    Hydra's own errors (a typo'd key, a missing config group option, a run folder that cannot be
    made) end as one line and exit 2, as the commands' own do; Ctrl-C as one line and exit 130
    (outputs are written whole or not at all: keypoints.core.outputs)."""
    if "--help" in overrides or "-h" in overrides:
        print(command_help(name))
        return
    # Hydra's `+key=value` adds a key nothing reads: a typo (+overwrit=true) must not pass unseen (the typed
    # detector group refuses its own unknown keys, naming its settings)
    added = next((o for o in overrides if o.startswith("+") and not o.startswith(("++", "+detector."))), None)
    if added is not None:
        key = added.lstrip("+").split("=", 1)[0]
        close = difflib.get_close_matches(key, _known_keys(name), n=1)
        print(f"error: {added}: keypoints {name} has no key {key} to add{f' (did you mean {close[0]}=?)' if close else ''}; "
              f"its keys: keypoints {name} --help", file=sys.stderr)
        sys.exit(2)
    saved = sys.argv
    sys.argv = [f"keypoints {name}", *_without_run_folder(name, overrides), *overrides]
    try:
        with one_line_errors():
            try:
                module = importlib.import_module(f"keypoints.commands.{name}")  # by name (see the docstring); Ctrl-C while torch loads is handled too
            except ModuleNotFoundError as e:  # a command whose extra is not installed (export: torch)
                extra = EXTRAS.get((e.name or "").split(".")[0])
                if extra is None:
                    raise
                print(f"error: keypoints {name} needs {e.name}, which this install does not have: pip install 'keypoints[{extra}]'",
                      file=sys.stderr)
                sys.exit(2)
            module.main()
    finally:
        sys.argv = saved


@contextmanager
def one_line_errors(interrupted: str = "the outputs written so far are whole; rerun the same command to finish the rest"):
    """Hydra's own errors (a typo'd key, a missing config group option, a run folder that cannot be
    made) as one line and exit 2, as the commands' own are (keypoints.commands.cli.friendly_errors); Ctrl-C
    as one line and exit 130. Around a @hydra.main function: the `keypoints` commands, and the
    checkout's scripts by `hydra_script`."""
    saved_full = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra re-raises instead of printing its own report and exit 1
    try:
        yield
    except KeyboardInterrupt:
        print(f"error: interrupted (Ctrl-C): {interrupted}", file=sys.stderr)
        sys.exit(130)
    except Exception as e:  # Hydra's and OmegaConf's, told by their module: listing the commands imports neither
        if not (isinstance(e, OSError) or type(e).__module__.split(".")[0] in ("hydra", "omegaconf") or _log_not_writable(e)):
            raise
        print(f"error: {hydra_error(e)}", file=sys.stderr)
        sys.exit(2)
    finally:
        if saved_full is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = saved_full


def hydra_script(main, interrupted: str = "stopped"):
    """A checkout script's @hydra.main function, its Hydra errors and Ctrl-C handled as the commands' are."""
    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        with one_line_errors(interrupted):
            return main(*args, **kwargs)
    return wrapper


def _log_not_writable(error: Exception) -> bool:
    """Hydra's job logging could not open its log file in the run folder (logging.config's ValueError)."""
    return isinstance(error, ValueError) and str(error).startswith("Unable to configure handler")


def hydra_error(error: Exception) -> str:
    """Hydra's error (several lines, its cause below it) as one line: its first line and its cause's."""
    if _log_not_writable(error) and isinstance(error.__cause__, OSError):
        error = error.__cause__  # a run folder that exists but cannot be written: its log file is named
    if isinstance(error, OSError) and error.filename:
        return f"{error.filename}: {error.strerror or error} (hydra.run.dir= or output=)"
    parts = [str(error)] + ([str(error.__cause__)] if error.__cause__ is not None else [])
    lines = [line.strip() for part in parts for line in part.splitlines() if line.strip()
             and "HYDRA_FULL_ERROR" not in line and not line.strip().startswith(("full_key", "object_type", "reference_type"))]
    text = "; ".join(dict.fromkeys(lines)) or type(error).__name__
    if getattr(error, "override", None):  # a parse error names the override it could not read
        text = f"{error.override}: {text}"
    return text[:400]


def script(name: str):
    """scripts/<name>.py's `main`: the command on the script's command line."""
    def main() -> None:
        run(name, sys.argv[1:])
    return main


def _without_run_folder(name: str, overrides: list[str]) -> list[str]:
    keys = {o.split("=", 1)[0].lstrip("+~") for o in overrides if "=" in o}
    if (name not in WRITES_NOTHING and "output" not in keys) or "hydra.run.dir" in keys:
        return []  # the outputs go to the run folder, or the user asked for one: Hydra's default
    return [o for o in NO_RUN_FOLDER if o.split("=", 1)[0] not in keys]


def command_help(name: str) -> str:
    """`keypoints <command> --help`: what it does, its own keys, and the detector's settings with their
    defaults and meanings, read from their one declaration (keypoints.inference.config; imported by name,
    as the commands are, so that `keypoints --help` loads no Hydra)."""
    what, keys = COMMANDS[name]
    settings = importlib.import_module("keypoints.inference.config").describe()
    return (f"keypoints {name}: {what}\n\n  {textwrap.fill(keys, 100, subsequent_indent='  ')}\n\n"
            f"the detector's settings (key=value; default, meaning):\n{settings}\n\n"
            f"the face stage's knobs: keypoints {name} --cfg job --package detector; "
            f"the whole composed config: keypoints {name} --cfg job")


def _known_keys(name: str) -> list[str]:
    """The keys `keypoints <name> --help` names: the command's own and the detector's settings."""
    own = [word.split("=", 1)[0] for word in COMMANDS[name][1].split() if "=" in word]
    settings = importlib.import_module("keypoints.inference.config")
    video = importlib.import_module("omegaconf").OmegaConf.load(resources.files("keypoints.conf") / "video" / "default.yaml")
    return own + [f"detector.{k}" for k in settings.DETECTOR_KEYS] + list(settings.RUNTIME_KEYS) + [f"video.{k}" for k in video]


def _help() -> str:
    width = max(map(len, COMMANDS))
    indent = " " * (width + 6)
    lines = [f"  {name:<{width}}  {what}\n" + textwrap.fill(keys, 100, initial_indent=indent, subsequent_indent=indent)
             for name, (what, keys) in COMMANDS.items()]
    return ("commands (each takes Hydra overrides, key=value; `keypoints <command> --help` lists every key):\n"
            + "\n".join(lines)
            + "\n\nexamples:\n  keypoints detect input=photo.jpg output=out/\n  keypoints serve port=8080\n\n"
            "Outputs go to output=; without it, to ./outputs/<command>/<date_time>/ beside Hydra's record of the run.\n"
            "Training is a checkout's job: python scripts/train.py (README.md).")


def _version() -> str:
    try:
        return version("keypoints")
    except PackageNotFoundError:  # a checkout on PYTHONPATH, not installed
        return "unknown"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="keypoints", description="Faces and their 68 iBUG keypoints.",
                                     epilog=_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"keypoints {_version()}")
    parser.add_argument("command", choices=COMMANDS, metavar="COMMAND", help=", ".join(COMMANDS))
    parser.add_argument("overrides", nargs=argparse.REMAINDER, help="key=value ... (Hydra overrides and flags)")
    args = parser.parse_args(argv)
    run(args.command, args.overrides)
