"""The real CLIs end to end on tiny data: Hydra overrides, Lightning Trainer, loggers, DDP, resume."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import DATA, REPO, run_script, tiny_overrides, wandb_run_field
from keypoints.core.annotations import read_annotations
from keypoints.inference.model_files import DEFAULT_MODEL
from keypoints.core.errors import KeypointsError
from keypoints.training.module import KeypointModule, load_checkpoint


@pytest.mark.parametrize("model", ["alexnet", "naimish"])
def test_fast_dev_run_of_each_model(tiny_root, tmp_path, model):
    proc = run_script("train.py", f"model={model}", "logger=none", "trainer.fast_dev_run=true", "model.dropout=0.3",
                      *tiny_overrides(tiny_root, tmp_path))
    results = json.loads((tmp_path / "metrics.json").read_text())
    assert results["test"]["n"] == 4  # fast_dev_run tests one batch of data.eval_batch_size=4
    assert 0 < results["test"]["nme"] < float("inf")
    assert "Error" not in proc.stderr


def test_run_folder_has_config_checkpoints_metrics_and_offline_wandb(tiny_root, tmp_path):
    """A child process: W&B's offline run file is complete when the process has ended (in this process
    its service may still be writing the run record when the test reads it)."""
    run_script("train.py", "model=naimish", "trainer.max_epochs=2", "logger=wandb", "logger.wandb.group=g1",
               *tiny_overrides(tiny_root, tmp_path), process=True)
    assert (tmp_path / ".hydra" / "config.yaml").is_file()
    ckpts = {p.name for p in (tmp_path / "checkpoints").iterdir()}
    assert "last.ckpt" in ckpts and any(name.startswith("epoch") for name in ckpts)
    results = json.loads((tmp_path / "metrics.json").read_text())
    assert results["epochs"] == 2 and results["best_val_nme"] > 0 and results["test"]["n"] == 8
    offline = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(offline) == 1, "W&B logs offline by default"
    run_file = next(offline[0].glob("run-*.wandb"))
    assert wandb_run_field(run_file, "run_group", "g1")  # the group reached W&B's run record, for `wandb sync`


@pytest.mark.slow
def test_same_seed_same_weights_on_cpu(tiny_root, tmp_path):
    for name in ("a", "b"):
        run_script("train.py", "model=naimish", "logger=none", "trainer.max_epochs=1", "test=false", "seed=7",
                   *tiny_overrides(tiny_root, tmp_path / name), process=True)
    a, b = (torch.load(tmp_path / n / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"] for n in "ab")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_evaluate_writes_metrics_json_and_matches_training_test(tiny_run, tiny_root, tmp_path):
    ckpt = tiny_run / "checkpoints" / "last.ckpt"
    run_script("evaluate.py", f"ckpt_path={ckpt}", f"paths.data_dir={tiny_root}", f"hydra.run.dir={tmp_path}",
               "trainer.accelerator=cpu", "trainer.enable_progress_bar=false")
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert {"nme", "fr10", "rmse_px", "n"} <= metrics.keys() and metrics["n"] == 8
    assert metrics["nme"] > 0 and 0 <= metrics["fr10"] <= 1 and metrics["rmse_px"] > 0


def test_a_weight_averaging_run_tests_the_averaged_weights_it_saves(tiny_root, tmp_path):
    """callbacks.ema saves the moving average as the checkpoint's weights: the run's test figure is theirs,
    as evaluate.py reads them (Lightning's callback would load the raw weights back for the test)."""
    run_script("train.py", "model=naimish", "logger=none", "trainer.max_epochs=2",
               "callbacks.ema={_target_: lightning.pytorch.callbacks.EMAWeightAveraging, decay: 0.5}",
               *tiny_overrides(tiny_root, tmp_path / "run"))
    trained = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "current_model_state" in torch.load(trained["best_ckpt"], weights_only=False)  # the average and the raw weights both saved
    run_script("evaluate.py", f"ckpt_path={trained['best_ckpt']}", f"paths.data_dir={tiny_root}", f"hydra.run.dir={tmp_path / 'eval'}",
               "trainer.accelerator=cpu", "trainer.enable_progress_bar=false")
    evaluated = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert evaluated["nme"] == pytest.approx(trained["test"]["nme"], rel=1e-5)


def test_resume_continues_from_the_checkpoint(tiny_run, tiny_root, tmp_path):
    ckpt = tiny_run / "checkpoints" / "last.ckpt"
    run_script("train.py", "model=naimish", "logger=none", "trainer.max_epochs=3", f"resume_from={ckpt}", "test=false",
               *tiny_overrides(tiny_root, tmp_path))
    before = torch.load(ckpt, weights_only=False)
    after = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    steps_per_epoch = before["global_step"] // 2
    assert before["epoch"] == 1 and after["epoch"] == 2  # only the third epoch ran
    assert after["global_step"] == before["global_step"] + steps_per_epoch


def test_init_from_starts_a_fresh_run_from_the_weights(tiny_run, tiny_root, tmp_path):
    """Fine-tuning: the weights come along, the epoch count and optimiser do not."""
    ckpt = tiny_run / "checkpoints" / "last.ckpt"
    run_script("train.py", "model=naimish", "logger=none", "trainer.max_epochs=1", f"init_from={ckpt}", "test=false",
               "optimizer.lr=0", *tiny_overrides(tiny_root, tmp_path))  # lr 0: the weights stay as loaded
    after = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    before = torch.load(ckpt, weights_only=False)
    assert after["epoch"] == 0 and after["global_step"] < before["global_step"]
    for key, value in before["state_dict"].items():
        torch.testing.assert_close(after["state_dict"][key], value)


def test_a_teacher_is_a_second_target_and_never_trained_or_saved(tiny_run, tiny_root, tmp_path):
    """Distillation (teacher=): the run's weights start from the teacher's and, at lr 0, stay there;
    the checkpoint holds the student's weights only, and the share is recorded for the next reader."""
    ckpt = tiny_run / "checkpoints" / "last.ckpt"
    run_script("train.py", "model=naimish", "logger=none", "trainer.max_epochs=1", f"init_from={ckpt}", f"teacher={tiny_run}",
               "teacher_weight=0.25", "test=false", "optimizer.lr=0", *tiny_overrides(tiny_root, tmp_path))
    after = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    before = torch.load(ckpt, weights_only=False)
    assert set(after["state_dict"]) == set(before["state_dict"])
    assert after["hyper_parameters"]["teacher_weight"] == 0.25
    assert_weights_as_loaded(after["state_dict"], before["state_dict"])


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")  # training_step outside a Trainer
def test_the_teachers_share_of_the_loss_is_its_points_against_the_students():
    student = KeypointModule(net={"_target_": "keypoints.training.models.naimish.NaimishNet"}, input_size=96,
                             loss={"_target_": "keypoints.training.losses.WingLoss"}, optimizer={}, teacher_weight=0.25).eval()
    teacher = KeypointModule(**student.hparams).eval()
    teacher.load_state_dict(student.state_dict())
    batch = {"image": torch.rand(2, 1, 96, 96), "keypoints": torch.zeros(2, 68, 2)}
    labels_only = student.loss(student(batch["image"]), batch)
    student.set_teacher(teacher)  # the same weights: its points are the student's, and its share of the loss is 0
    torch.testing.assert_close(student.training_step(batch, 0), 0.75 * labels_only)
    assert not any(name.startswith("_teacher") for name, _ in student.named_parameters())
    teacher.hparams.input_size = 112
    with pytest.raises(KeypointsError, match="a teacher must see the student's crops"):
        student.set_teacher(teacher)
    teacher.hparams.input_size = 96
    for weight in (0, 1.5, float("nan"), True, "abc"):
        student.hparams.teacher_weight = weight
        with pytest.raises(KeypointsError, match=r"^teacher_weight=.*: must be a share in \(0, 1\] with a teacher$"):
            student.set_teacher(teacher)


def assert_weights_as_loaded(after: dict, before: dict) -> None:
    """An lr-0 run's weights equal those it started from; BN running statistics still move."""
    for key, value in before.items():
        if "running_" not in key and "num_batches" not in key:
            torch.testing.assert_close(after[key], value)


def test_the_default_models_second_stage_fine_tunes_a_first_stage_checkpoint(tiny_face_checkpoint, tiny_root, tmp_path):
    run_script("train.py", "experiment=face_resnet_finetune", f"init_from={tiny_face_checkpoint}", "logger=none",
               "trainer.max_epochs=1", "test=false", "optimizer.lr=0", *tiny_overrides(tiny_root, tmp_path))
    after = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    before = torch.load(tiny_face_checkpoint, weights_only=False)
    assert after["epoch"] == 0 and after["hyper_parameters"]["input_size"] == 112
    assert_weights_as_loaded(after["state_dict"], before["state_dict"])


def test_init_from_a_run_folder_takes_its_best_checkpoint(tiny_run, tiny_root, tmp_path):
    """How `make train` hands stage 1 to stage 2: init_from=<stage 1's folder>."""
    best = json.loads((tiny_run / "metrics.json").read_text())["best_ckpt"]
    run_script("train.py", "model=naimish", "logger=none", "trainer.max_epochs=1", f"init_from={tiny_run}",
               "test=false", "optimizer.lr=0", *tiny_overrides(tiny_root, tmp_path))
    after = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    for key, value in torch.load(best, weights_only=False)["state_dict"].items():
        torch.testing.assert_close(after[key], value)


@pytest.mark.slow
def test_make_train_runs_the_four_stages_of_the_default_recipe(tiny_root, tmp_path):
    for folder in ("aflw/unlabelled", "lfw/Some_One"):  # stand-ins for the unlabelled wild photos
        (tmp_path / "wild" / folder).mkdir(parents=True)
        for photo in sorted((tiny_root / "training").iterdir())[:3]:
            shutil.copy(photo, tmp_path / "wild" / folder)
    tiny = [o for o in tiny_overrides(tiny_root, tmp_path) if not o.startswith("hydra.run.dir")]
    args = " ".join([*tiny, "logger=none", "trainer.max_epochs=1", "trainer.limit_train_batches=2", "test=false",
                     "optimizer.lr=0"])
    env = {**os.environ, "WANDB_SILENT": "true"}
    proc = subprocess.run(["make", "train", f"BIN={os.path.dirname(sys.executable)}", f"RUN={tmp_path}", f"ARGS={args}",
                           f"WILD={tmp_path / 'wild'}", f"PSEUDO_ARGS=teachers.keypoints.ckpt_path=null calibration.limit=70 paths.data_dir={DATA}"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    stage1 = json.loads((tmp_path / "stage1" / "metrics.json").read_text())["best_ckpt"]
    stage2 = torch.load(tmp_path / "stage2" / "checkpoints" / "last.ckpt", weights_only=False)
    assert stage2["hyper_parameters"]["data_config"]["train_frame"]["flip"] == 0  # stage 2's own config
    assert_weights_as_loaded(stage2["state_dict"], torch.load(stage1, weights_only=False)["state_dict"])
    # 3DDFA_V2 the inner points, the model the jaw (an lr-0 stage 2 is untrained: the shipped model stands in)
    for source in ("aflw", "lfw"):
        names, _, _, weights = read_annotations(tmp_path / "pseudo" / f"{source}.csv", with_confidence=True)
        assert len(names) == 3 and (weights[:, 17:] > 0).all()
    stage3 = torch.load(tmp_path / "stage3" / "checkpoints" / "last.ckpt", weights_only=False)
    assert "sources" in stage3["hyper_parameters"]["data_config"]  # trained on them
    assert_weights_as_loaded(stage3["state_dict"], stage2["state_dict"])
    stage4 = torch.load(tmp_path / "stage4" / "checkpoints" / "last.ckpt", weights_only=False)
    assert "sources" not in stage4["hyper_parameters"]["data_config"]
    assert_weights_as_loaded(stage4["state_dict"], stage3["state_dict"])


@pytest.mark.slow
def test_two_process_ddp_on_cpu_gives_the_same_test_nme(tiny_run, tiny_root, tmp_path):
    ckpt = tiny_run / "checkpoints" / "last.ckpt"
    nme = {}
    for devices in (1, 2):
        out = tmp_path / f"d{devices}"
        strategy = "ddp" if devices > 1 else "auto"
        run_script("evaluate.py", f"ckpt_path={ckpt}", f"paths.data_dir={tiny_root}", f"hydra.run.dir={out}",
                   "trainer.accelerator=cpu", f"trainer.devices={devices}", f"trainer.strategy={strategy}",
                   "trainer.enable_progress_bar=false", process=True)
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["n"] == 8  # no face padded in twice across processes
        nme[devices] = metrics["nme"]
    assert nme[1] == pytest.approx(nme[2], rel=1e-6)


@pytest.mark.slow
def test_ddp_training_runs_two_processes(tiny_root, tmp_path):
    proc = run_script("train.py", "model=naimish", "logger=csv", "trainer=ddp", "trainer.accelerator=cpu",
                      "trainer.devices=2", "trainer.max_epochs=1", *tiny_overrides(tiny_root, tmp_path), process=True)
    assert "distributed_backend=gloo" in proc.stdout + proc.stderr
    assert "All distributed processes registered. Starting with 2 processes" in proc.stdout + proc.stderr
    results = json.loads((tmp_path / "metrics.json").read_text())
    assert results["test"]["n"] == 8
    load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")


def test_sigterm_leaves_a_usable_checkpoint_named_as_interrupted_and_exits_non_zero(tiny_root, tmp_path):
    """SLURM, `timeout` and CI stop jobs with SIGTERM: the run saves what it has under a name that
    says so, writes no metrics.json (it is not a finished run) and exits non-zero (make stops)."""
    # save_top_k=0 and no last-checkpoint callback: a checkpoint on disk can only come from SIGTERM.
    proc = subprocess.Popen(
        [sys.executable, "scripts/train.py", "model=naimish", "logger=csv", "trainer.max_epochs=100000",
         "callbacks.model_checkpoint.save_top_k=0", "callbacks.last_checkpoint=null",
         *tiny_overrides(tiny_root, tmp_path)],
        cwd=REPO, env={**os.environ, "WANDB_SILENT": "true"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    logged = tmp_path / "csv" / "version_0" / "metrics.csv"
    deadline = time.time() + 120
    while not logged.is_file() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)  # training is under way once the first epoch's metrics are written
    assert logged.is_file(), "training never started"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) != 0
    saved = list((tmp_path / "checkpoints").glob("*.ckpt"))
    assert len(saved) == 1, f"expected the checkpoint written on SIGTERM, found {saved}"
    assert saved[0].name.startswith("interrupted-epoch") and not (tmp_path / "metrics.json").exists()
    assert torch.load(saved[0], weights_only=False)["global_step"] > 0
    assert load_checkpoint(saved[0]).hparams.input_size == 96


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["paths.data_dir=/nonexistent/faces"], "error: data root /nonexistent/faces does not exist"),
        (["resume_from=/nonexistent/last.ckpt"], "error: /nonexistent/last.ckpt: checkpoint not found"),
        ([f"resume_from={DEFAULT_MODEL}"], f"error: {DEFAULT_MODEL}: resume_from= a run of another model ("),
        (["trainer.strategy=ddp_spawn", "trainer.devices=2"], "error: trainer.strategy=ddp_spawn double-counts"),
        (["init_from=/nonexistent/best.ckpt"], "error: /nonexistent/best.ckpt: checkpoint not found"),
        (["teacher=/nonexistent/teacher.ckpt"], "error: /nonexistent/teacher.ckpt: checkpoint not found"),
        ([f"teacher={DEFAULT_MODEL}"],
         "error: teacher: it takes 96 px, 1 channel(s), face_eval gray pipeline crops, this model 96 px, 1 channel(s), seed_eval gray pipeline"),
        (["experiment=face_resnet_finetune"], "error: init_from is required by this experiment"),
        (["init_from=/"], "error: /: a run folder without checkpoints"),
        (["data.batch_size=0"], "error: data.batch_size=0: must be a whole number >= 1"),
        (["data.batch_size=64"], "fewer than one batch (data.batch_size=64)"),
        (["optimizer.lr=fast"], "error: optimizer.lr='fast': must be a number >= 0.0"),
        (["trainer.accelerator=gpu"], "error: trainer: "),
    ],
)
def test_bad_input_is_one_line_not_a_traceback(tmp_path, tiny_root, overrides, message):
    proc = run_script("train.py", "model=naimish", "logger=none", *tiny_overrides(tiny_root, tmp_path), *overrides,
                      check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert message in proc.stderr


@pytest.mark.slow
def test_alexnet_batchnorm_statistics_are_recalibrated_before_validation(tiny_root, tmp_path):
    # 9 training faces in batches of 4: 2 steps per epoch; recalibration resets the counters and
    # averages over 1 batch, so every BN layer of the saved net has seen exactly 1 batch, not 2 steps.
    run_script("train.py", "model=alexnet", "logger=none", "trainer.max_epochs=1", "test=false",
               "model.bn_recalibration_batches=1", *tiny_overrides(tiny_root, tmp_path), process=True)
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    tracked = [v.item() for k, v in state.items() if k.endswith("num_batches_tracked")]
    assert len(tracked) == 6 and set(tracked) == {1}  # BN after conv2-5 and fc1-2


def _with_row(tiny_root, tmp_path, row: int, values) -> object:
    """A copy of the tiny data set whose training CSV's `row` (1-based, after the header) has `values`."""
    import shutil

    root = tmp_path / "data"
    shutil.copytree(tiny_root, root)
    csv = root / "training_frames_keypoints.csv"
    lines = csv.read_text().splitlines()
    name, *coords = lines[row].split(",")
    lines[row] = ",".join([name, *(str(v) for v in values(coords))])
    csv.write_text("\n".join(lines) + "\n")
    return root, name


@pytest.mark.parametrize("values, message", [
    (lambda c: ["0"] * 136, "all 136 coordinates are 0"),
    (lambda c: ["1e9", *c[1:]], "outside the"),
    (lambda c: [c[0], "-50", *c[2:]], "outside the"),
    (lambda c: [c[0], c[1]] * 68, "the 68 points span 0 x 0 px"),
])  # fmt: skip
def test_check_data_refuses_bad_label_rows_with_the_row_named(tiny_root, tmp_path, values, message):
    root, name = _with_row(tiny_root, tmp_path, 3, values)
    proc = run_script("check_data.py", str(root), check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("error: ") and name in line and message in line, line


def test_training_refuses_an_all_zero_label_row_before_training(tiny_root, tmp_path):
    """The common "missing" marker would train to NaN and a perfect-looking FR@0.10: refused by name."""
    root, name = _with_row(tiny_root, tmp_path, 3, lambda c: ["0"] * 136)
    proc = run_script("train.py", "model=naimish", "logger=none", *tiny_overrides(root, tmp_path / "run"), check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith("error: ")
    assert name in proc.stderr and "all 136 coordinates are 0" in proc.stderr
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_training_names_a_bad_test_split_row_before_the_fit(tiny_root, tmp_path):
    """A NaN in the test CSV was found only after the whole fit: now at setup, before the first step."""
    import shutil

    root = tmp_path / "data"
    shutil.copytree(tiny_root, root)
    csv = root / "test_frames_keypoints.csv"
    lines = csv.read_text().splitlines()
    name, *coords = lines[2].split(",")
    lines[2] = ",".join([name, "nan", *coords[1:]])
    csv.write_text("\n".join(lines) + "\n")
    proc = run_script("train.py", "model=naimish", "logger=none", *tiny_overrides(root, tmp_path / "run"), check=False)
    assert proc.returncode == 2 and name in proc.stderr and str(csv) in proc.stderr, proc.stderr
    assert not list((tmp_path / "run").rglob("*.ckpt"))  # before any epoch
