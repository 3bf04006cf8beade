"""Labels from teachers for unlabelled photos, and training data that mixes them with labelled faces."""

import json
import sys

import cv2
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from conftest import DATA, REPO, run_script, tiny_overrides
from keypoints.checkpoints import load_model
from keypoints.training import pseudo_labels as pl
from keypoints.data import read_annotations
from keypoints.errors import KeypointsError
from keypoints.geometry import rotation


def test_point_map_learns_a_convention_and_moves_with_the_face():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(30, 2))  # a teacher's 30 points
    teacher = base[None] + rng.normal(scale=0.05, size=(400, 30, 2))
    # "our" convention: each of 68 points sits between one of the teacher's points and its neighbour
    first = rng.integers(0, 30, size=68)
    second = np.argsort(np.linalg.norm(base[:, None] - base[None], axis=2), axis=1)[first, 1]
    mix = np.stack([first, second], axis=1)
    ours = 0.6 * teacher[:, first] + 0.4 * teacher[:, second]
    indices, weights = pl.fit_point_map(teacher, ours, k=8, ridge=1e-6)
    assert np.allclose(weights.sum(axis=1), 1, atol=1e-3)
    # a new face, turned 30 degrees, three times as large, elsewhere: labels follow it
    face = base + rng.normal(scale=0.05, size=(30, 2))
    moved = face @ (3 * rotation(30)).T + [200, 100]
    expected = (0.6 * face[first] + 0.4 * face[second]) @ (3 * rotation(30)).T + [200, 100]
    got = pl.apply_point_map(moved[None], indices, weights)[0]
    assert np.abs(got - expected).max() < 0.01 * 3  # of a face about 3 x 2 wide


def test_confidence_is_agreement_between_the_two_readings():
    a = np.stack([np.c_[np.linspace(0, 100, 68), np.linspace(0, 100, 68)]] * 3).astype(np.float32)
    b = a.copy()
    b[1] += 5.0   # 5 px on a 100 px face: half of the scale
    b[2] = np.nan  # no face in the mirror image
    assert np.allclose(pl.agreement(a, b), [1.0, 1 - np.hypot(5, 5) / 100 / pl.AGREEMENT_SCALE, 0.0], atol=1e-6)
    spot = np.full((1, 68, 2), 56.0, np.float32)  # an untrained model's points, all at the crop's centre
    assert pl.agreement(spot, spot).tolist() == [0.0]


def test_teachers_labels_are_averaged_by_their_confidence():
    a, b = np.zeros((3, 68, 2), np.float32), np.full((3, 68, 2), 10.0, np.float32)
    b[2] = np.nan  # teacher b found no face in the third photo
    labels, confidence, led_by = pl.weighted_mean([(a, np.array([0.2, 0.5, 0.4])), (b, np.array([0.6, 0.5, 0.9]))])
    np.testing.assert_allclose(labels[:, 0, 0], [7.5, 5.0, 0.0])
    np.testing.assert_allclose(confidence, [0.6, 0.5, 0.9])
    assert led_by[0] == 1 and led_by[2] == 0
    labels, confidence, _ = pl.weighted_mean([(a[:1], np.zeros(1)), (b[:1], np.zeros(1))])
    assert np.isnan(labels).all() and confidence.tolist() == [0.0]  # no confident teacher: no label


def test_a_teacher_reads_the_face_nearest_the_centre_in_the_photo_and_its_mirror():
    path = DATA / "training" / read_annotations(DATA / "training_frames_keypoints.csv")[0][0]
    width, height = pl.sizes_of([path])[0]
    faces = lambda image: [np.full((68, 2), 5.0), np.full((68, 2), [image.shape[1] / 2 - 3, height / 2])]  # noqa: E731
    both = pl.nearest_centre_readings([path], True, faces)
    assert both.shape == (1, 2, 68, 2) and np.allclose(both[0, :, 0], [width / 2 - 3, height / 2])
    alone = pl.nearest_centre_readings([path], False, lambda image: [])
    assert alone.shape == (1, 1, 68, 2) and np.isnan(alone).all()  # no face: NaN


def test_a_teacher_named_by_a_run_folder_loads_that_runs_checkpoint(tiny_face_checkpoint):
    run = tiny_face_checkpoint.parent.parent  # how make train names stage 2 as a teacher
    best = json.loads((run / "metrics.json").read_text())["best_ckpt"]
    teacher = pl.DetectorTeacher(run)
    expected = load_model(best).state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in teacher.detector.predictor.module.state_dict().items())


def test_our_model_agrees_with_itself_across_the_mirror_of_a_real_face():
    name = read_annotations(DATA / "training_frames_keypoints.csv")[0][0]
    path = DATA / "training" / name
    labels, confidence = pl.read_with_mirror(pl.DetectorTeacher(), [path], pl.sizes_of([path])[:, 0], None)
    truth = read_annotations(DATA / "training_frames_keypoints.csv")[1][0]
    assert confidence[0] > 0.4
    # unmirrored correctly: the mean reading sits on the face, not on its mirror image
    assert np.linalg.norm(labels[0] - truth, axis=1).mean() < 0.1 * np.linalg.norm(truth[36] - truth[45])


def test_pseudo_label_cli_writes_a_readable_scored_csv(tmp_path):
    folder = tmp_path / "photos" / "person"
    folder.mkdir(parents=True)
    names = read_annotations(DATA / "test_frames_keypoints.csv")[0][:3]
    for name in names:
        cv2.imwrite(str(folder / name), cv2.imread(str(DATA / "test" / name)))
    out = tmp_path / "labels.csv"
    args = [f"images={tmp_path / 'photos'}", f"output={out}", "~teachers.mediapipe", f"hydra.run.dir={tmp_path / 'run'}"]
    run_script("pseudo_label.py", *args)
    got, points, confidence = read_annotations(out, with_confidence=True)
    assert sorted(got) == sorted(f"person/{n}" for n in names)
    assert points.shape == (3, 68, 2) and ((confidence > 0) & (confidence <= 1)).all()
    again = run_script("pseudo_label.py", *args, check=False)
    assert again.returncode == 2 and "exists: pass overwrite=true" in again.stderr.strip().splitlines()[-1]
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_script("pseudo_label.py", f"images={empty}", f"output={tmp_path / 'x.csv'}", check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == f"error: images={empty}: no image files in it"
    proc = run_script("pseudo_label.py", f"images={tmp_path / 'photos'}", f"output={tmp_path / 'z.csv'}", "combine=vote", check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith("error: combine='vote': must be one of most_confident")
    missing = tmp_path / "labels_typo.csv"
    proc = run_script("pseudo_label.py", f"images={tmp_path / 'photos'}", f"check_labels={missing}",
                      f"output={tmp_path / 'y.csv'}", check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == f"error: check_labels={missing}: no such CSV file"


def test_teachers_are_scored_against_labels_when_given(tmp_path):
    proc = run_script("pseudo_label.py", f"images={DATA / 'test'}", f"check_labels={DATA / 'test_frames_keypoints.csv'}",
                      "check_limit=3", f"output={tmp_path / 'labels.csv'}", "~teachers.mediapipe",
                      f"hydra.run.dir={tmp_path / 'run'}")
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| keypoints") or line.startswith("| kept")]
    assert len(rows) == 2 and all("| 3 of 3 |" in row for row in rows)
    assert len(read_annotations(tmp_path / "labels.csv")[0]) == 3


def test_a_failing_teacher_is_one_line():
    teacher = pl.CommandTeacher([sys.executable, "-c", "import sys; sys.exit('no model file here')"], "broken")
    with pytest.raises(KeypointsError, match=r"^teacher broken failed \(exit 1\): no model file here$"):
        teacher([DATA / "training" / "x.jpg"])


def _face_wild(root, source_csv, images, *extra):
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["experiment=face_resnet_wild", f"paths.data_dir={root}",
                                          f"data.sources.aflw.labels={source_csv}", f"data.sources.aflw.images={images}",
                                          "data.val_fraction=0.25", *extra])
    return instantiate(cfg.data)


def test_sources_join_the_training_split_by_weight_and_confidence(tiny_root, tmp_path):
    names, points = read_annotations(tiny_root / "training_frames_keypoints.csv")
    csv = tmp_path / "pseudo.csv"
    pl.write_csv(csv, names[:4], points[:4], np.array([0.9, 0.2, 0.6, 0.3]))
    data = _face_wild(tiny_root, csv, tiny_root / "training", "data.sources.aflw.min_confidence=0.5",
                      "data.train_weight=0.5", "data.sources.aflw.weight=0.5", "data.epoch_size=40",
                      "data.batch_size=4")
    data.setup("fit")
    assert len(data.datasets["train"]) == 9 + 2  # 12 labelled less 3 for validation, and 2 confident faces
    w = data.sample_weights.numpy()
    assert np.isclose(w[:9].sum(), 0.5) and np.allclose(w[9:], 0.5 * np.array([0.9, 0.6]) / 1.5)
    batch = next(iter(data.train_dataloader()))
    assert batch["image"].shape[1:] == (1, 112, 112)
    assert len(data.train_dataloader().sampler) == 40


def test_a_source_with_no_confident_face_is_one_line(tiny_root, tmp_path):
    names, points = read_annotations(tiny_root / "training_frames_keypoints.csv")
    csv = tmp_path / "pseudo.csv"
    pl.write_csv(csv, names[:2], points[:2], np.array([0.1, 0.2]))
    data = _face_wild(tiny_root, csv, tiny_root / "training")
    with pytest.raises(KeypointsError, match=r"^data.sources.aflw: no face of .*pseudo.csv has confidence >= 0.3$"):
        data.setup("fit")


def test_a_wild_fine_tune_trains_from_the_shipped_model(tiny_root, tmp_path):
    names, points = read_annotations(tiny_root / "training_frames_keypoints.csv")
    csv = tmp_path / "pseudo.csv"
    pl.write_csv(csv, names, points, np.full(len(names), 0.8))
    run_script("train.py", "experiment=face_resnet_wild", "init_from=src/keypoints/weights/face_resnet.ckpt",
               f"data.sources.aflw.labels={csv}", f"data.sources.aflw.images={tiny_root / 'training'}",
               "data.epoch_size=8", "trainer.max_epochs=1", "trainer.precision=32",
               "logger=none", *tiny_overrides(tiny_root, tmp_path / "run"))
    assert list((tmp_path / "run" / "checkpoints").glob("*.ckpt"))
