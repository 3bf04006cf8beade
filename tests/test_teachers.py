"""Teachers' labels for unlabelled photos (3DDFA_V2, the project's own model, ...), per point, and
training data that mixes them with labelled faces."""

import json
import sys

import cv2
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from conftest import DATA, REPO, SHARED, run_script, tiny_overrides
from keypoints.inference.model_files import DEFAULT_MODEL
from keypoints.training.checkpoints import load_model
from keypoints.core.annotations import read_annotations
from keypoints.training.data import KeypointsDataset
from keypoints.training.data.transforms import face_eval
from keypoints.inference.framing import FaceFrame
from keypoints.core.errors import KeypointsError
from keypoints.core.geometry import rotation
from keypoints.core.io import read_image
from keypoints.core.landmarks import FLIP, GROUPS
from keypoints.teachers import labels as pl
from keypoints.teachers.others import CommandTeacher, DetectorTeacher, nearest_centre_readings
from keypoints.teachers.tddfa import TDDFA
from keypoints.training.module import KeypointModule

TDDFA_DIR = SHARED / "models" / "3ddfa_v2"
WILD = SHARED / "data" / "wild" / "aflw" / "labelled"


def test_3ddfa_reproduces_the_authors_points_on_three_wild_photos():
    teacher = TDDFA(str(TDDFA_DIR))
    for case in json.loads((TDDFA_DIR / "check" / "expected.json").read_text()):
        x, y, w, h = case["yunet_box_xywh"]
        _, _, passes = teacher.fit([read_image(WILD / case["image"], upright=False)], np.array([[x, y, x + w, y + h]]))
        for (rois, points), n in zip(passes, ("1", "2")):
            np.testing.assert_allclose(rois[0], case[f"roi_pass{n}"], atol=0.01)
            np.testing.assert_allclose(points[0], case[f"points_pass{n}"], atol=0.1)  # pixels


def test_3ddfa_does_not_teach_the_jaw_of_a_turned_face():
    teacher = TDDFA(str(TDDFA_DIR), jaw_max_yaw=30.0)
    frontal, profile = WILD / "image00013.jpg", WILD / "image00118.jpg"  # yaw about 3 and 75 degrees
    points, teach = teacher([frontal, profile])
    assert points.shape == (2, 2, 68, 2) and np.isfinite(points).all()
    assert teach[0].all()  # the frontal face, and its mirror image: every point
    assert not teach[1][:, GROUPS["jaw"]].any() and teach[1][:, GROUPS["eyes"]].all()
    # read_with_mirror turns that into per-point confidence 0, and groups left out of the config too
    labels, confidence = pl.read_with_mirror(teacher, [frontal, profile], pl.readable([frontal, profile])[1][:, 0], None,
                                             ["jaw", "eyes", "nose"])
    assert (confidence[1, GROUPS["jaw"]] == 0).all() and (confidence[0, GROUPS["jaw"]] > 0).all()
    assert (confidence[:, GROUPS["mouth"]] == 0).all() and (confidence[:, GROUPS["eyes"]] > 0.5).all()


def test_3ddfa_names_a_missing_model_folder(tmp_path):
    with pytest.raises(KeypointsError, match=r"^teachers.3ddfa.model_dir=.*: mb05_120x120.onnx not found"):
        TDDFA(str(tmp_path))


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


def test_confidence_is_agreement_between_the_two_readings_by_point_group():
    a = np.stack([np.c_[np.linspace(0, 100, 68), np.linspace(0, 100, 68)]] * 3).astype(np.float32)
    b = a.copy()
    b[1] += 5.0   # 5 px on a 100 px face: half of the scale
    b[2] = np.nan  # no face in the mirror image
    got = pl.agreement(a, b)
    assert got.shape == (3, 68)
    assert np.allclose(got, np.array([1.0, 1 - np.hypot(5, 5) / 100 / pl.AGREEMENT_SCALE, 0.0])[:, None], atol=1e-6)
    b = a[:1].copy()
    b[0, GROUPS["jaw"]] += 8.0  # the readings disagree on the jaw alone
    got = pl.agreement(a[:1], b)[0]
    assert (got[GROUPS["jaw"]] < 0.2).all() and (got[GROUPS["eyes"]] == 1.0).all()
    spot = np.full((1, 68, 2), 56.0, np.float32)  # an untrained model's points, all at the crop's centre
    assert not pl.agreement(spot, spot).any()


def test_teachers_labels_are_combined_point_by_point():
    a, b = np.zeros((3, 68, 2), np.float32), np.full((3, 68, 2), 10.0, np.float32)
    b[2] = np.nan  # teacher b found no face in the third photo
    ca, cb = np.zeros((3, 68)), np.zeros((3, 68))
    ca[:, 17:], cb[:, :17] = 0.5, 0.8  # a teaches the inner points, b the jaw
    cb[0, 17:] = 0.5                   # on the first face b may teach everything, as sure as a
    labels, confidence, led_by = pl.combine([(a, ca), (b, cb)], "weighted_mean")
    np.testing.assert_allclose(labels[0, :17, 0], 10.0)  # b's jaw
    np.testing.assert_allclose(labels[0, 17:, 0], 5.0)   # the mean of two equally sure teachers
    np.testing.assert_allclose(labels[1, 17:, 0], 0.0)
    np.testing.assert_allclose(confidence[1], np.r_[np.full(17, 0.8), np.full(51, 0.5)])
    # no teacher may teach the third face's jaw: it keeps a place (framing needs all 68) but weighs 0
    assert np.isfinite(labels[2]).all() and (confidence[2, :17] == 0).all()
    assert led_by.tolist() == [0, 0, 0]  # by the inner points' confidence
    labels, confidence, _ = pl.combine([(a, ca), (b, cb)], "most_confident")
    np.testing.assert_allclose(labels[1, :17, 0], 10.0) and np.testing.assert_allclose(labels[1, 17:, 0], 0.0)


def test_only_labels_the_training_reader_takes_are_kept(tmp_path):
    """A full profile's outer eye corners on top of each other (as 3D-fitted labels put them on AFLW's
    image00260.jpg) would stop a training run: such a row, like a non-finite or outside one, is not written."""
    _, labels = read_annotations(DATA / "test_frames_keypoints.csv")
    points = np.repeat(labels[:1], 5, axis=0)
    sizes = np.tile([1000.0, 1000.0], (5, 1))
    points[1, 45] = points[1, 36] + 0.5  # eye corners coincide
    points[2, 10, 0] = np.nan
    points[3] += 2000  # outside its photo
    face = np.array([0.9, 0.9, 0.9, 0.9, 0.05])
    assert pl.usable(points, face, sizes, min_confidence=0.1).tolist() == [True, False, False, False, False]
    path = tmp_path / "kept.csv"
    keep = pl.usable(points, face, sizes, 0.0)
    pl.write_csv(path, [f"{i}.jpg" for i in np.flatnonzero(keep)], points[keep], np.ones((int(keep.sum()), 68)))
    assert read_annotations(path)[0] == ["0.jpg", "4.jpg"]


def test_the_csv_carries_a_weight_a_point_and_bad_weights_are_one_line(tmp_path):
    points = read_annotations(DATA / "training_frames_keypoints.csv")[1][:2]
    weights = np.ones((2, 68))
    weights[1, :17] = 0.0
    pl.write_csv(tmp_path / "l.csv", ["a.jpg", "b.jpg"], points, weights * 0.9)
    names, got, confidence, point_weights = read_annotations(tmp_path / "l.csv", with_confidence=True)
    np.testing.assert_allclose(got, points, atol=0.01)
    np.testing.assert_allclose(confidence, [0.9, 0.9]) and np.testing.assert_allclose(point_weights, weights * 0.9)
    hand = read_annotations(DATA / "test_frames_keypoints.csv", with_confidence=True)
    assert (hand[2] == 1).all() and (hand[3] == 1).all()  # a hand-labelled CSV: every point counts fully
    lines = (tmp_path / "l.csv").read_text().splitlines()
    (tmp_path / "bad.csv").write_text("\n".join([lines[0], lines[1].rsplit(",", 1)[0] + ",1.5"]) + "\n")
    with pytest.raises(KeypointsError, match=r"bad.csv:2: a.jpg: confidence and point weights must be within 0-1$"):
        read_annotations(tmp_path / "bad.csv", with_confidence=True)


def test_the_loss_ignores_points_of_weight_zero_and_mirrors_carry_their_weights(tiny_root):
    module = KeypointModule(net={"_target_": "keypoints.training.models.naimish.NaimishNet"}, input_size=96,
                            loss={"_target_": "keypoints.training.losses.WingLoss"}, optimizer={})
    pred, target = torch.zeros(2, 68, 2), torch.zeros(2, 68, 2)
    target[0, 3] = 5.0  # one point far off ...
    weights = torch.ones(2, 68)
    weights[0, 3] = 0.0  # ... that no teacher may teach
    assert module.loss(pred, {"keypoints": target, "weights": weights}).item() == 0.0
    assert module.loss(pred, {"keypoints": target}).item() > 0.0
    names, points = read_annotations(tiny_root / "training_frames_keypoints.csv")
    w = np.ones((1, 68), np.float32)
    w[0, 0] = 0.0  # the jaw's first point (the face's right side)
    frame = FaceFrame(112, 1.4, flip=1.0)  # always mirrored
    item = KeypointsDataset(tiny_root / "training", names[:1], points[:1], face_eval(grayscale=True), 112, frame, w)[0]
    assert item["weights"][FLIP[0]] == 0.0 and item["weights"].sum() == 67


def test_a_teacher_reads_the_face_nearest_the_centre_in_the_photo_and_its_mirror():
    path = DATA / "training" / read_annotations(DATA / "training_frames_keypoints.csv")[0][0]
    width, height = pl.readable([path])[1][0]
    faces = lambda image: [np.full((68, 2), 5.0), np.full((68, 2), [image.shape[1] / 2 - 3, height / 2])]  # noqa: E731
    both = nearest_centre_readings([path], True, faces)
    assert both.shape == (1, 2, 68, 2) and np.allclose(both[0, :, 0], [width / 2 - 3, height / 2])
    alone = nearest_centre_readings([path], False, lambda image: [])
    assert alone.shape == (1, 1, 68, 2) and np.isnan(alone).all()  # no face: NaN


def test_a_teacher_named_by_a_run_folder_loads_that_runs_checkpoint(tiny_face_checkpoint):
    run = tiny_face_checkpoint.parent.parent  # how make train names stage 2 as a teacher
    best = json.loads((run / "metrics.json").read_text())["best_ckpt"]
    teacher = DetectorTeacher(run)
    expected = load_model(best).state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in teacher.detector.predictor.module.state_dict().items())


def test_our_model_agrees_with_itself_across_the_mirror_of_a_real_face():
    name = read_annotations(DATA / "training_frames_keypoints.csv")[0][0]
    path = DATA / "training" / name
    labels, confidence = pl.read_with_mirror(DetectorTeacher(), [path], pl.readable([path])[1][:, 0], None, list(GROUPS))
    truth = read_annotations(DATA / "training_frames_keypoints.csv")[1][0]
    assert (confidence[0] > 0.4).all()
    # unmirrored correctly: the mean reading sits on the face, not on its mirror image
    assert np.linalg.norm(labels[0] - truth, axis=1).mean() < 0.1 * np.linalg.norm(truth[36] - truth[45])


def test_pseudo_label_cli_writes_a_readable_scored_csv(tmp_path):
    folder = tmp_path / "photos" / "person"
    folder.mkdir(parents=True)
    names = read_annotations(DATA / "test_frames_keypoints.csv")[0][:3]
    for name in names:
        cv2.imwrite(str(folder / name), cv2.imread(str(DATA / "test" / name)))
    (folder / "notes.jpg").write_text("not a photo")  # one broken file does not stop the run
    out = tmp_path / "labels.csv"
    args = [f"images={tmp_path / 'photos'}", f"output={out}", f"hydra.run.dir={tmp_path / 'run'}",
            f"paths.data_dir={DATA}", "calibration.limit=70", f"paths.tddfa_dir={TDDFA_DIR}"]
    proc = run_script("pseudo_label.py", *args)
    assert f"skipped {folder / 'notes.jpg'}: not a readable image" in proc.stderr
    assert "3 of 3 photos labelled (1 unreadable file(s) skipped)" in proc.stdout
    got, points, confidence, weights = read_annotations(out, with_confidence=True)
    assert sorted(got) == sorted(f"person/{n}" for n in names)
    assert points.shape == (3, 68, 2) and ((confidence > 0) & (confidence <= 1)).all()
    # the default teachers: 3DDFA the inner points, the project's model the jaw
    assert (weights > 0).all()
    summary = json.loads(out.with_name("labels.csv.json").read_text())
    assert summary["calibration"][0]["teacher"] == "3ddfa" and summary["calibration"][0]["mapped"] is False
    assert summary["skipped"] == ["person/notes.jpg"]
    proc = run_script("pseudo_label.py", *args, "overwrite=true", "teachers.tddfa.groups=[ears]", check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == \
        "error: teachers.tddfa.groups: unknown ['ears'] (one of jaw, brows, nose, eyes, mouth)"
    proc = run_script("pseudo_label.py", *args, "overwrite=true", "teachers.tddfa.map_points=maybe", check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == \
        "error: teachers.tddfa.map_points='maybe': must be true, false or null"
    again = run_script("pseudo_label.py", *args, check=False)
    assert again.returncode == 2 and "exists: pass overwrite=true" in again.stderr.strip().splitlines()[-1]
    photo = folder / names[0]
    before = photo.read_bytes()
    (tmp_path / "link.csv").symlink_to(photo)
    for into in (photo, tmp_path / "link.csv"):  # a photo being labelled, by its path or a link to it
        proc = run_script("pseudo_label.py", *args[:1], f"output={into}", *args[2:], "overwrite=true", check=False)
        assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == \
            f"error: {into}: output would overwrite an input (the same file, or a link to it); choose another output= folder"
    assert photo.read_bytes() == before
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
                      "check_limit=3", f"output={tmp_path / 'labels.csv'}", "~teachers.tddfa",
                      "teachers.keypoints.groups=[jaw,brows,nose,eyes,mouth]", f"hydra.run.dir={tmp_path / 'run'}")
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| keypoints") or line.startswith("| kept")]
    assert len(rows) == 2 and all("| 3 of 3 |" in row for row in rows)
    names = read_annotations(DATA / "test_frames_keypoints.csv")[0]
    assert read_annotations(tmp_path / "labels.csv")[0] == names[:3]
    run_script("pseudo_label.py", f"images={DATA / 'test'}", f"check_labels={DATA / 'test_frames_keypoints.csv'}",
               "check_limit=2", "check_skip=3", f"output={tmp_path / 'held.csv'}", "~teachers.tddfa",
               "teachers.keypoints.groups=[jaw,brows,nose,eyes,mouth]", f"hydra.run.dir={tmp_path / 'run2'}")
    assert read_annotations(tmp_path / "held.csv")[0] == names[3:5]


def test_a_failing_teacher_is_one_line():
    teacher = CommandTeacher([sys.executable, "-c", "import sys; sys.exit('no model file here')"], "broken")
    with pytest.raises(KeypointsError, match=r"^teacher broken failed \(exit 1\): no model file here$"):
        teacher([DATA / "training" / "x.jpg"])


def _face_wild(root, source_csv, images, *extra):
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["experiment=face_resnet_wild", f"paths.data_dir={root}",
                                          f"data.sources.aflw.labels={source_csv}", f"data.sources.aflw.images={images}",
                                          "~data.sources.lfw",
                                          "data.val_fraction=0.25", *extra])
    return instantiate(cfg.data)


def test_sources_join_the_training_split_by_weight_and_confidence(tiny_root, tmp_path):
    names, points = read_annotations(tiny_root / "training_frames_keypoints.csv")
    csv = tmp_path / "pseudo.csv"
    pl.write_csv(csv, names[:4], points[:4], np.repeat([[0.9], [0.2], [0.6], [0.3]], 68, axis=1))
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
    pl.write_csv(csv, names[:2], points[:2], np.repeat([[0.1], [0.2]], 68, axis=1))
    data = _face_wild(tiny_root, csv, tiny_root / "training")
    with pytest.raises(KeypointsError, match=r"^data.sources.aflw: no face of .*pseudo.csv has confidence >= 0.3$"):
        data.setup("fit")


def test_a_wild_fine_tune_trains_from_the_shipped_model(tiny_root, tmp_path):
    names, points = read_annotations(tiny_root / "training_frames_keypoints.csv")
    csv = tmp_path / "pseudo.csv"
    pl.write_csv(csv, names, points, np.full((len(names), 68), 0.8))
    run_script("train.py", "experiment=face_resnet_wild", "model=mobile", f"init_from={DEFAULT_MODEL}",
               f"data.sources.aflw.labels={csv}", f"data.sources.aflw.images={tiny_root / 'training'}",
               "~data.sources.lfw", "data.epoch_size=8", "trainer.max_epochs=1", "trainer.precision=32",
               "logger=none", *tiny_overrides(tiny_root, tmp_path / "run"))
    assert list((tmp_path / "run" / "checkpoints").glob("*.ckpt"))
