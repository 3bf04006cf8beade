"""Hydra multirun sweeps end to end: one folder per job, one W&B group, a comparison table."""

import json

import pytest

from conftest import wandb_run_field, run_script, tiny_overrides


def sweep_overrides(root, sweep_dir) -> list[str]:
    run_dir = [o for o in tiny_overrides(root, sweep_dir) if not o.startswith("hydra.run.dir")]
    return [*run_dir, f"hydra.sweep.dir={sweep_dir}", "model=naimish", "trainer.max_epochs=1"]


@pytest.mark.slow
def test_two_job_sweep_writes_two_runs_one_wandb_group_and_a_comparison(tiny_root, tmp_path):
    sweep_dir = tmp_path / "sweep"
    run_script("train.py", "-m", "model.dropout=0.1,0.5", "logger=wandb", *sweep_overrides(tiny_root, sweep_dir), process=True)
    for job in ("0", "1"):
        results = json.loads((sweep_dir / job / "metrics.json").read_text())
        assert results["test"]["n"] == 8
        offline = list((sweep_dir / job / "wandb").glob("offline-run-*/run-*.wandb"))
        assert len(offline) == 1
        assert wandb_run_field(offline[0], "run_group", sweep_dir.name)  # the group: the sweep folder's name
        assert wandb_run_field(offline[0], "tags", f"model.dropout={['0.1', '0.5'][int(job)]}")  # the override as a tag

    proc = run_script("compare.py", str(sweep_dir), process=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert lines[0].split("|")[2].strip() == "model.dropout"  # the swept key is a column
    assert [line.split("|")[2].strip() for line in lines[1:]] == ["0.1", "0.5"]
    assert (sweep_dir / "comparison.png").stat().st_size > 1000
    assert (sweep_dir / "comparison.md").read_text().count("\n") == 4


def test_multirun_with_two_devices_is_refused_with_what_to_do_not_a_hang(tiny_root, tmp_path):
    proc = run_script("train.py", "-m", "seed=1,2", "logger=none", "trainer.accelerator=cpu", "trainer.devices=2",
                      *sweep_overrides(tiny_root, tmp_path / "sweep"), check=False, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "error: multirun with trainer.devices=2 is not supported" in proc.stderr
    assert "hydra/launcher=slurm" in proc.stderr and "submitit_slurm" not in proc.stderr  # the project's launcher config


def test_compare_names_a_missing_sweep_folder(tmp_path):
    proc = run_script("compare.py", str(tmp_path / "nope"), check=False)
    assert proc.returncode == 2 and "nope: sweep folder not found" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_submitit_local_launcher_runs_two_jobs(tiny_root, tmp_path):
    sweep_dir = tmp_path / "sweep"
    run_script("train.py", "-m", "hydra/launcher=local", "seed=1,2", "logger=none", *sweep_overrides(tiny_root, sweep_dir), process=True)
    for job in ("0", "1"):
        assert json.loads((sweep_dir / job / "metrics.json").read_text())["test"]["n"] == 8


@pytest.mark.slow
def test_optuna_search_minimises_best_val_nme(tiny_root, tmp_path):
    sweep_dir = tmp_path / "sweep"
    run_script("train.py", "-m", "hparams_search=optuna", "hydra.sweeper.n_trials=2", "logger=none",
               *sweep_overrides(tiny_root, sweep_dir), process=True)
    best = (sweep_dir / "optimization_results.yaml").read_text()
    assert "best_params" in best and "optimizer.lr" in best
    values = [json.loads((sweep_dir / j / "metrics.json").read_text())["best_val_nme"] for j in ("0", "1")]
    assert f"best_value: {min(values)}" in best
