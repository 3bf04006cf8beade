"""The `keypoints` command as a user meets it: its help (without loading torch), each command's keys,
and what a run leaves behind: its outputs where output= says, and no Hydra run folder beside them."""

import contextlib
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from conftest import PHOTOS, REPO, initialize_for, run_script
from keypoints.commands import COMMANDS, main

PHOTO = PHOTOS / "obamas.jpg"


def test_help_lists_every_command_and_loads_neither_torch_nor_hydra():
    """A child Python, as the console script runs: -X importtime names every module it imported."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "keypoints", "--help"],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    for name, (_, keys) in COMMANDS.items():
        assert re.search(rf"^  {name} ", proc.stdout, re.M), name
        assert keys.split()[0] in proc.stdout
    imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if "|" in line}
    assert "keypoints" in imported and not imported & {"torch", "cv2", "hydra", "lightning"}, sorted(imported)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_key_the_help_names_is_in_the_commands_config(name):
    """So the help cannot drift from the packaged config: its keys exist, and a number it shows is the default."""
    overrides = ["input=x.jpg"] if name in ("detect", "filter") else []
    GlobalHydra.instance().clear()
    with initialize_for(name):
        cfg = compose(name, overrides=overrides)
    values = OmegaConf.to_container(cfg, resolve=False)
    for key, value in re.findall(r"([\w.]+)=(\S+)", COMMANDS[name][1]):
        node = values
        for part in key.split("."):
            assert isinstance(node, dict) and part in node, f"{name}: {key} is not in its config"
            node = node[part]
        if re.fullmatch(r"\d+(\.\d+)?", value):
            assert str(node) == value, f"{name}: {key}={value} in the help, {node} in the config"


def _in_process(cwd, *argv):
    """`keypoints <argv>` run in this process from `cwd`; (exit code, stdout, stderr)."""
    out, err, code = io.StringIO(), io.StringIO(), 0
    try:
        with contextlib.chdir(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main(list(argv))
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    finally:
        GlobalHydra.instance().clear()
    return code, out.getvalue(), err.getvalue()


def test_a_run_told_where_to_write_writes_only_there(tmp_path):
    code, out, err = _in_process(tmp_path, "detect", f"input={PHOTO}", "output=out")
    assert code == 0, err
    assert "obamas.jpg: 2 face(s)" in out
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [  # the outputs and what made them
        "out", "out/.keypoints-made.log", "out/obamas.json", "out/obamas.png"]


def test_a_run_without_output_writes_its_run_folder_under_the_current_directory(tmp_path):
    code, _, err = _in_process(tmp_path, "detect", f"input={PHOTO}")
    assert code == 0, err
    [run] = (tmp_path / "outputs" / "detect").iterdir()
    assert (run / "obamas.json").is_file() and (run / ".hydra" / "config.yaml").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outputs"]


def test_serve_keeps_no_run_folder_unless_asked(tmp_path):
    """Hydra's own --cfg hydra shows the run folder a command would use (nothing is served)."""
    code, out, err = _in_process(tmp_path, "serve", "--cfg", "hydra")
    assert code == 0, err
    hydra = OmegaConf.create(out).hydra
    assert hydra.run.dir == "." and hydra.output_subdir is None
    code, out, _ = _in_process(tmp_path, "serve", f"hydra.run.dir={tmp_path / 'run'}", "--cfg", "hydra")
    assert OmegaConf.create(out).hydra.run.dir == str(tmp_path / "run") and OmegaConf.create(out).hydra.output_subdir


def test_the_script_and_the_command_write_the_same_json(tmp_path):
    run_script("detect.py", f"input={PHOTO}", f"output={tmp_path / 'script'}")
    assert _in_process(tmp_path, "detect", f"input={PHOTO}", "output=command")[0] == 0
    assert json.loads((tmp_path / "script" / "obamas.json").read_text()) == json.loads(
        (tmp_path / "command" / "obamas.json").read_text())


def test_a_missing_input_or_an_unknown_command_is_one_line(tmp_path):
    proc = run_script("detect.py", f"output={tmp_path / 'out'}", check=False)
    assert proc.returncode == 2 and proc.stderr == "error: input: required, give it on the command line as input=<value>\n"
    code, _, err = _in_process(tmp_path, "train")
    assert code == 2 and "invalid choice: 'train'" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("added, hint", [("+overwrit=true", "did you mean overwrite=?"),
                                         ("+video.smothing=1", "did you mean video.smoothing=?")])
def test_a_key_added_with_plus_is_refused_with_the_key_it_was_meant_to_be(added, hint):
    """Hydra's `+key=value` adds a key nothing reads: a typo would pass unseen (issue 53)."""
    proc = subprocess.run([sys.executable, "-m", "keypoints", "detect", f"input={PHOTO}", added], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(f"error: {added}: keypoints detect has no key") and hint in proc.stderr


@pytest.mark.skipif(not Path("/proc/self/fdinfo").is_dir(), reason="needs Linux's /proc: a folder no one can write into, even root")
@pytest.mark.parametrize("command", [["-m", "keypoints", "detect", f"input={PHOTO}"], [str(REPO / "scripts" / "evaluate.py")]])
def test_a_run_folder_that_cannot_be_written_is_one_line(command, tmp_path):
    """Hydra's log file in a run folder that exists but cannot be written was logging's 54-line traceback."""
    proc = subprocess.run([sys.executable, *command, "hydra.run.dir=/proc/self/fdinfo"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("error: /proc/self/fdinfo/") and ".log: " in proc.stderr and "hydra.run.dir=" in proc.stderr
