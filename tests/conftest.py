"""Shared fixtures: a tiny real data root built from ../shared, and runners for the real CLIs (in
process, or as a child process where the process itself is under test)."""

import contextlib
import functools
import importlib.util
import inspect
import io
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import wandb
from hydra import compose, initialize_config_dir, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from keypoints.commands.cli import check_settings
from keypoints.commands.detect import main as detect_command
from keypoints.core.errors import KeypointsError

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("KEYPOINTS_SHARED", REPO.parent / "shared"))
DATA = SHARED / "data" / "facial-keypoints"
PHOTOS = SHARED / "data" / "photos"
OVERLAYS = SHARED / "data" / "overlays"
# The inference commands' configs ship in the package (keypoints/conf/); training's stay in conf/
PACKAGED_CONF = REPO / "src" / "keypoints" / "conf"


def initialize_for(name: str):
    """Hydra initialised where config `name` lives, as its entry point finds it: the package's
    keypoints/conf (detect, filter, serve, export, benchmark) or the checkout's conf/."""
    if (PACKAGED_CONF / f"{name}.yaml").is_file():
        return initialize_config_module("keypoints.conf", version_base="1.3")
    return initialize_config_dir(str(REPO / "conf"), version_base="1.3")


def _copy_split(src_csv: Path, src_dir: Path, dst_csv: Path, dst_dir: Path, rows: int) -> None:
    """The first `rows` faces of a split; every third image re-saved as the public download's
    RGBA PNG named .jpg, every third as grayscale, so all three decoders are exercised."""
    dst_dir.mkdir(parents=True)
    lines = src_csv.read_text().splitlines()
    dst_csv.write_text("\n".join(lines[: rows + 1]) + "\n")
    for i, line in enumerate(lines[1 : rows + 1]):
        name = line.split(",", 1)[0]
        image = cv2.imread(str(src_dir / name))
        if i % 3 == 1:
            ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_BGR2BGRA))
        elif i % 3 == 2:
            ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
        else:
            ok, data = cv2.imencode(".jpg", image)
        assert ok
        (dst_dir / name).write_bytes(data.tobytes())


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    """12 training and 8 test faces from the real data set, in the public download's layout."""
    if not DATA.is_dir():
        pytest.fail(f"{DATA} not found: the tests read the real data set from ../shared (or KEYPOINTS_SHARED)")
    root = tmp_path_factory.mktemp("data") / "facial-keypoints"
    _copy_split(DATA / "training_frames_keypoints.csv", DATA / "training", root / "training_frames_keypoints.csv", root / "training", 12)
    _copy_split(DATA / "test_frames_keypoints.csv", DATA / "test", root / "test_frames_keypoints.csv", root / "test", 8)
    return root


def tiny_overrides(root: Path, run_dir: Path) -> list[str]:
    """Hydra overrides that make a training run take seconds on the tiny data."""
    return [
        f"paths.data_dir={root}",
        f"hydra.run.dir={run_dir}",
        "data.val_fraction=0.25",
        "data.batch_size=4",
        "data.eval_batch_size=4",
        "trainer.accelerator=cpu",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
    ]


def run_script(script: str, *overrides: str, check: bool = True, process: bool = False,
               timeout: int = 300) -> subprocess.CompletedProcess:
    """Run one of scripts/*.py as a user would, from the repository root: in this process by default
    (its `main()` with `sys.argv` set, so Hydra composes, checks and writes the run folder as on the
    command line, without paying for a Python start-up); `process=True` for what is about the process
    itself (exit codes as a shell sees them, signals, start-up)."""
    if process:
        return run_process(script, *overrides, check=check, timeout=timeout)
    main = _script_main(script)
    stdout, stderr, code = io.StringIO(), io.StringIO(), 0
    saved_argv, saved_env = sys.argv, dict(os.environ)
    os.environ.update(WANDB_SILENT="true", HYDRA_FULL_ERROR="0")
    os.environ.pop("KEYPOINTS_DATA", None)
    sys.argv = [str(REPO / "scripts" / script), *overrides]
    try:
        with contextlib.chdir(REPO), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            main()
    except SystemExit as e:  # friendly_errors' exit 2, Hydra's 1 on a bad override
        code = e.code if isinstance(e.code, int) else 1
    finally:
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_env)
        GlobalHydra.instance().clear()
        if wandb.run is not None:  # a run left open would be reused by the next test's logger
            wandb.finish()
    proc = subprocess.CompletedProcess(sys.argv, code, stdout.getvalue(), stderr.getvalue())
    if check and code != 0:
        raise AssertionError(f"{script} exited {code}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}")
    return proc


def compose_config(name: str, *overrides: str, run_dir: Path) -> DictConfig:
    """<name>.yaml composed as its entry point would compose it, with `run_dir` as the run's
    folder (${paths.output_dir}): for calling the library function behind a CLI directly."""
    GlobalHydra.instance().clear()
    with initialize_for(name):
        cfg = compose(name, overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)
    HydraConfig.instance().set_config(cfg)
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    return cfg


@functools.cache
def _script_main(script: str):
    spec = importlib.util.spec_from_file_location(f"scripts.{Path(script).stem}", REPO / "scripts" / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    inner = inspect.unwrap(module.main)
    inner.__module__ = "__main__"  # Hydra finds config_path="../conf" beside the file, as for `python scripts/...`
    return module.main


def run_process(script: str, *overrides: str, check: bool = True, timeout: int = 300) -> subprocess.CompletedProcess:
    """scripts/<script> in a child Python, as a shell runs it."""
    env = {**os.environ, "WANDB_SILENT": "true", "HYDRA_FULL_ERROR": "0"}
    env.pop("KEYPOINTS_DATA", None)
    proc = subprocess.run(
        [sys.executable, f"scripts/{script}", *overrides],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{script} exited {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="session")
def tiny_run(tiny_root, tmp_path_factory) -> Path:
    """A real 2-epoch Naimish training run on the tiny data (seconds); its folder has checkpoints/."""
    run_dir = tmp_path_factory.mktemp("tiny_run")
    run_script("train.py", "model=naimish", "logger=csv", "trainer.max_epochs=2", *tiny_overrides(tiny_root, run_dir))
    return run_dir


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_run) -> Path:
    """A checkpoint that tests of inference code can load; accuracy is not what they check."""
    return tiny_run / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="session")
def tiny_face_checkpoint(tiny_root, tmp_path_factory) -> Path:
    """A face-crop model (experiment=face_resnet, the shipped default's recipe) after 1 tiny epoch."""
    run_dir = tmp_path_factory.mktemp("tiny_face_run")
    run_script("train.py", "experiment=face_resnet", "logger=none", "trainer.max_epochs=1",
               *tiny_overrides(tiny_root, run_dir))
    return run_dir / "checkpoints" / "last.ckpt"


def wandb_run_field(run_file: Path, field: str, value: str) -> bool:
    """Whether the offline W&B run file records `value` in its RunRecord's `field` (run_group,
    tags, ...): the protobuf field's own tag and length before the bytes, so a path or a logged
    hyper-parameter that merely contains the same text does not count."""
    from wandb.proto import wandb_internal_pb2 as pb

    number = pb.RunRecord.DESCRIPTOR.fields_by_name[field].number
    encoded = value.encode()
    return bytes([(number << 3) | 2, len(encoded)]) + encoded in run_file.read_bytes()


def detect_check_error(*overrides: str) -> str:
    """The one line the check every entry point runs gives on `keypoints detect`'s composed config with
    these overrides (in-process, no subprocess)."""
    with initialize_for("detect"):
        cfg = compose("detect", overrides=["input=x.jpg", "output=out", *overrides])
    with pytest.raises(KeypointsError) as caught:
        check_settings(cfg, detect_command.rules)
    return str(caught.value)
