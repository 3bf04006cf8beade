"""Every config composes and builds, in-process (no subprocess, seconds): each experiment, each
option of each group, and each entry point's primary config, through the same check the CLIs run."""

import importlib
import shlex
import subprocess
from pathlib import Path

import pytest
import torch
from hydra import compose
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from lightning.pytorch.callbacks import WeightAveraging
from omegaconf import OmegaConf, open_dict

from conftest import PACKAGED_CONF, REPO, _script_main, initialize_for
from keypoints import training
from keypoints.commands.cli import check_settings
from keypoints.inference.cpu import cpu_has_bf16
from keypoints.inference.faces import STAGES

CONF = REPO / "conf"
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
GROUPS = {group: sorted(p.stem for p in (CONF / group).glob("*.yaml"))
          for group in ("model", "data", "loss", "optimizer", "scheduler", "logger")}
ENTRY_POINTS = sorted(p.stem for p in [*CONF.glob("*.yaml"), *PACKAGED_CONF.glob("*.yaml")])


def _compose(name: str, overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_for(name):
        return compose(name, overrides=overrides, return_hydra_config=True)


def _resolvable(cfg):
    """Hydra's runtime values (the run folder) as a run would have them."""
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = "/tmp/keypoints-configs"
    OmegaConf.set_readonly(cfg.hydra, False)
    return cfg


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_builds_its_model_and_data(experiment):
    cfg = _resolvable(_compose("train", [f"experiment={experiment}", "paths.data_dir=/data", "paths.w300_dir=/w300"]))
    check_settings(cfg, (training.RULES,))
    net = instantiate(cfg.model.net)
    size = cfg.model.input_size
    channels = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d)).in_channels
    with torch.no_grad():
        assert net.eval()(torch.zeros(1, channels, size, size)).shape == (1, 68, 2)
    data = instantiate(cfg.data)
    # the labelled set of record: the data set's root, or 300-W's for the default model's recipe
    assert data.input_size == size and str(data.root) == ("/w300" if experiment.startswith("face_300w") else "/data")
    ema = cfg.callbacks.get("ema")  # face_300w_student's moving average of the weights builds too
    assert ema is None or isinstance(instantiate(ema), WeightAveraging)
    instantiate(cfg.loss)
    instantiate(cfg.optimizer)(net.parameters())


@pytest.mark.parametrize("group, option", [(g, o) for g, options in GROUPS.items() for o in options])
def test_every_option_of_every_group_composes_and_builds(group, option):
    cfg = _resolvable(_compose("train", [f"{group}={option}", "paths.data_dir=/data"]))
    check_settings(cfg, (training.RULES,))
    node = cfg[group]
    if group == "logger":
        for sub in (node or {}).values():
            if sub is not None:
                assert "_target_" in sub
        return
    built = instantiate(node) if node is not None else None
    assert (built is None) == (option == "none")  # scheduler=none means no scheduler; all else builds


REQUIRED = {"detect": ["input=x.jpg"], "filter": ["input=x.jpg"], "ship_model": ["ckpt_path=x.ckpt"],
            "pseudo_label": ["images=x", "output=x.csv"]}  # their `???` keys


def entry_rules(entry: str) -> tuple[dict, ...]:
    """The tables of rules entry point `entry` names (`@friendly_errors(rules=...)`): the packaged
    command's, or the checkout script's."""
    if (PACKAGED_CONF / f"{entry}.yaml").is_file():
        return importlib.import_module(f"keypoints.commands.{entry}").main.rules
    return _script_main(f"{entry}.py").rules


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_every_entry_points_config_composes_and_passes_its_checks(entry):
    cfg = _resolvable(_compose(entry, REQUIRED.get(entry, [])))
    check_settings(cfg, entry_rules(entry))
    if "detector" in cfg:
        assert cfg.detector.faces._target_.startswith("keypoints.inference.faces.")


def test_every_rule_checks_a_key_of_an_entry_point_that_names_it():
    """A rule is skipped where a config lacks its key (a table serves several entry points), so a
    misspelt or stale key would never run: each must be in one entry point's config that names it."""
    seen = {}
    other_options = [("detect", ["engine=ray"])]  # a group option's own keys
    for entry, options in [(entry, []) for entry in ENTRY_POINTS] + other_options:
        cfg = _resolvable(_compose(entry, REQUIRED.get(entry, []) + options))
        for table in entry_rules(entry):
            for key in table:
                seen[key] = seen.get(key, False) or OmegaConf.select(cfg, key, default="absent") != "absent"
    assert seen and not [key for key, found in seen.items() if not found]
    tables = {id(t) for entry in ENTRY_POINTS for t in entry_rules(entry)}
    assert len(tables) >= 8  # runner, video, web, load test, training, benchmarks, teachers, visualize, export, ship_model


@pytest.mark.parametrize("stage", STAGES)
def test_every_face_stage_composes_into_every_entry_point_that_has_one(stage):
    for entry in ("detect", "filter", "benchmark", "export", "measure_framing", "benchmark_speed"):
        overrides = ["input=x.jpg"] if entry in ("detect", "filter") else []
        assert _compose(entry, [*overrides, f"detector={stage}"]).detector.faces._target_.endswith(
            "YuNet" if stage == "yunet" else "HaarCascade")


def test_make_train_student_runs_three_rounds_that_compose():
    """The shipped model's teacher's recipe as the Makefile runs it: each train.py line's overrides compose (a
    misspelt key or a setting of a switched-off callback would stop the run after the labels)."""
    dry = subprocess.run(["make", "-n", "train-student", "RUN=/r", "STUDENT_INIT=/init", "WILD=/wild"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    rounds = [shlex.split(line.split("scripts/train.py", 1)[1]) for line in dry.replace("\\\n", " ").splitlines() if "scripts/train.py" in line]
    cfgs = [_compose("train", [o for o in overrides if not o.startswith("hydra.")]) for overrides in rounds]
    assert [c.init_from for c in cfgs] == ["/init", "/r/student", "/r/student_ema"]
    assert all(c.model.input_size == 96 and c.paths.pseudo_dir == "/r/pseudo_student" for c in cfgs)
    assert [c.callbacks.ema and c.callbacks.ema.decay for c in cfgs] == [None, 0.998, 0.999]
    assert [c.trainer.max_epochs for c in cfgs] == [60, 40, 40]


def test_make_train_mobile_runs_the_shipped_models_two_rounds():
    """The shipped model's recipe: 380 epochs of model=mobile from scratch, then the quantization-aware round
    from them; both taught by TEACHER, on the wild labels it made."""
    dry = subprocess.run(["make", "-n", "train-mobile", "RUN=/r", "TEACHER=/teacher", "WILD=/wild"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    assert "teachers.keypoints.ckpt_path=/teacher" in dry and "output=/r/pseudo_mobile/aflw.csv" in dry
    rounds = [shlex.split(line.split("scripts/train.py", 1)[1]) for line in dry.replace("\\\n", " ").splitlines() if "scripts/train.py" in line]
    cfgs = [_compose("train", [o for o in overrides if not o.startswith("hydra.")]) for overrides in rounds]
    assert [c.model.net._target_ for c in cfgs] == ["keypoints.training.models.MobileRegressor"] * 2
    assert [c.init_from for c in cfgs] == [None, "/r/mobile"] and [c.fine_tune for c in cfgs] == [False, True]
    assert all(c.teacher == "/teacher" and c.paths.pseudo_dir == "/r/pseudo_mobile" for c in cfgs)
    assert [c.trainer.max_epochs for c in cfgs] == [380, 40]
    assert [bool(c.callbacks.get("quantization_aware")) for c in cfgs] == [False, True]


@pytest.mark.parametrize("bf16, expected", [(False, "32-true"), (True, "bf16-mixed")])
def test_the_experiments_train_in_bf16_only_where_it_is_the_faster(monkeypatch, tmp_path, bf16, expected):
    """bf16 autocast is emulated on an AVX2-only CPU, 14x slower than float32 (docs/RESULTS.md): the
    experiments' precision is chosen by the machine (${fast_precision:}), not written as bf16-mixed."""
    monkeypatch.setattr(training, "cpu_has_bf16", lambda: bf16)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for experiment in ("face_resnet", "face_300w", "alexnet_seed"):
        cfg = _compose("train", [f"experiment={experiment}", "paths.data_dir=/data", "paths.w300_dir=/w300"])
        assert cfg.trainer.precision == expected, experiment
    flags = tmp_path / "cpuinfo"
    flags.write_text("processor : 0\nflags : fpu sse avx2 fma\n")
    assert not cpu_has_bf16(flags)
    flags.write_text("processor : 0\nflags : fpu avx2 avx512f avx512_vnni avx512_bf16\n")
    assert cpu_has_bf16(flags)
