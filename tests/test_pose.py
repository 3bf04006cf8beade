"""Head pose and 3D points from the 68 keypoints (keypoints.core.pose): the convention, AFLW2000-3D's, turned and
mirrored photos, profiles, depth, the JSON."""

import csv
import json

import cv2
import numpy as np
import pytest

import keypoints
from conftest import PHOTOS, SHARED
from keypoints.core import geometry
from keypoints.core.annotations import read_annotations
from keypoints.core.pose import FLIP, Pose, face_model, fit_head

WILD = SHARED / "data" / "wild" / "aflw" / "labelled"
# Profiles, chosen by looking at them: the nose in outline, the far eye hidden; +1: the nose points
# to the photo's right, -1: to its left
PROFILES = {"image01790.jpg": -1, "image01126.jpg": -1, "image02745.jpg": 1, "image00473.jpg": 1,
            "image01586.jpg": 1, "image03664.jpg": 1, "image00460.jpg": 1, "image04105.jpg": 1}


@pytest.fixture(scope="module")
def detector():
    return keypoints.Detector()


WILD_LABELS = WILD.parent


def seen(pose: Pose, scale: float = 2e-4, centre=(320.0, 240.0)) -> np.ndarray:
    """The face model's mean face turned by `pose` and seen from afar: (68, 3) in pixels, z toward the camera."""
    head = face_model().mean @ FLIP  # its axes as the camera's: x right, y down, z away
    placed = scale * head @ pose.matrix().T
    return np.column_stack([placed[:, :2] + centre, -placed[:, 2]])


@pytest.mark.parametrize("yaw, pitch, roll", [(30, 0, 0), (0, 20, 0), (0, 0, -15), (-60, 10, 25)])
def test_the_mean_face_seen_at_a_known_pose_gives_that_pose_and_its_depth(yaw, pitch, roll):
    """The convention, on the 3D face model's mean face: a positive yaw turns the nose to the photo's right,
    a positive pitch lifts it, a positive roll tilts the head clockwise; the depth comes back too."""
    truth = seen(Pose(yaw, pitch, roll))
    got = fit_head(truth[:, :2])
    np.testing.assert_allclose([got.pose.yaw, got.pose.pitch, got.pose.roll], [yaw, pitch, roll], atol=0.05)
    np.testing.assert_allclose(got.points, truth - [0, 0, truth[:, 2].mean()], atol=0.05)
    nose, eyes = truth[30], (truth[36] + truth[45]) / 2
    if yaw:
        assert np.sign(nose[0] - eyes[0]) == np.sign(yaw)


def test_the_nose_is_nearer_the_camera_than_the_ears_and_a_turned_heads_far_side_is_deeper():
    front = fit_head(seen(Pose(0, 0, 0))[:, :2]).points
    assert front[30, 2] > front[[0, 16], 2].max() and abs(front[:, 2].mean()) < 1e-9
    turned = fit_head(seen(Pose(40, 0, 0))[:, :2]).points  # the nose to the photo's right: the left side (0-7) comes forward
    assert turned[:8, 2].mean() > turned[9:17, 2].mean()


def labelled_wild() -> tuple[list, np.ndarray, dict, np.ndarray]:
    names, points = read_annotations(WILD_LABELS / "labelled_keypoints.csv")
    with open(WILD_LABELS / "labelled_pose.csv", newline="") as f:
        poses = {r["file"]: [float(r[k]) for k in ("yaw", "pitch", "roll")] for r in csv.DictReader(f)}
    with open(WILD_LABELS / "labelled_3d.csv", newline="") as f:
        depth = {r[0]: np.array(r[1:], float).reshape(68, 3) for r in list(csv.reader(f))[1:]}
    return names, points, poses, np.stack([depth[n] for n in names])


def test_the_labels_own_points_give_aflw2000s_pose_and_depth():
    """Fitted to AFLW2000-3D's own 2D points, the pose in its convention (Pose.aflw2000) is its label within a
    few degrees, and the 3D points its 3D points: a wrong sign or order of angles would be tens of degrees off."""
    names, points, poses, depth = labelled_wild()
    errors, depth_errors = [], []
    for name, p, truth in zip(names, points, depth):
        fit = fit_head(p)
        errors.append(np.abs(np.subtract(fit.pose.aflw2000(), poses[name])))
        w, h = np.ptp(truth[:, 0]), np.ptp(truth[:, 1])
        truth = truth - [0, 0, truth[:, 2].mean()]
        depth_errors.append(np.linalg.norm(fit.points[17:] - truth[17:], axis=1).mean() / np.sqrt(w * h))
    errors = np.array(errors)
    assert np.median(errors, axis=0).max() < 2.5 and errors.mean() < 3, errors.mean(axis=0)
    assert np.mean(depth_errors) < 0.03


def test_aflw2000s_angles_follow_its_convention():
    """+yaw turns the face toward the photo's left (ours: right), +pitch lifts the chin, +roll turns it clockwise."""
    assert Pose(20, 0, 0).aflw2000() == pytest.approx((-20, 0, 0), abs=1e-9)
    assert Pose(0, 15, 0).aflw2000() == pytest.approx((0, 15, 0), abs=1e-9)
    assert Pose(0, 0, 10).aflw2000() == pytest.approx((0, 0, 10), abs=1e-9)


def test_copies_of_a_photo_turned_by_20_degrees_either_way_differ_in_roll_by_40(detector):
    photo = cv2.imread(str(PHOTOS / "obamas.jpg"))
    left, right = (detector(geometry.turned(photo, angle)[0]) for angle in (20, -20))
    assert len(left) == len(right) == 2
    for a, b in zip(left, right):  # turned anticlockwise on screen: the head rolls anticlockwise (negative)
        assert b.pose.roll - a.pose.roll == pytest.approx(40, abs=3)
        assert abs(a.pose.yaw - b.pose.yaw) < 3 and abs(a.pose.pitch - b.pose.pitch) < 3


@pytest.mark.parametrize("name", ["obamas.jpg", "the_beatles.jpg"])
def test_a_mirror_image_flips_the_signs_of_yaw_and_roll(detector, name):
    photo, _ = geometry.turned(cv2.imread(str(PHOTOS / name)), 15)  # a clear roll to flip
    faces, mirrored = detector(photo), detector(photo[:, ::-1].copy())[::-1]  # faces go left to right
    assert len(faces) == len(mirrored) > 0
    for a, b in zip(faces, mirrored):
        assert np.sign(a.pose.yaw) == -np.sign(b.pose.yaw) and np.sign(a.pose.roll) == -np.sign(b.pose.roll)
        assert abs(a.pose.yaw + b.pose.yaw) < 6 and abs(a.pose.roll + b.pose.roll) < 6
        assert abs(a.pose.pitch - b.pose.pitch) < 6


@pytest.mark.parametrize("name, side", PROFILES.items())
def test_profiles_in_the_wild_are_turned_more_than_45_degrees(detector, name, side):
    photo = cv2.imread(str(WILD / name))
    face = max(detector(photo), key=lambda f: f.box[2] * f.box[3])
    assert abs(face.pose.yaw) > 45 and np.sign(face.pose.yaw) == side, face.pose


def test_pose_is_in_the_json_of_a_photos_faces_without_a_track(detector):
    face = detector(PHOTOS / "mona_lisa.jpg")[0]
    record = json.loads(json.dumps(face.to_json()))
    assert set(record) == {"box", "score", "keypoints", "pose", "keypoints_3d"}
    assert record["pose"] == {"yaw": round(face.pose.yaw, 1), "pitch": round(face.pose.pitch, 1),
                              "roll": round(face.pose.roll, 1)}
    assert np.array(record["keypoints_3d"]).shape == (68, 3)
    inner = np.array(record["keypoints_3d"])[17:, :2] - face.keypoints[17:]  # the fitted face lies on its keypoints
    assert np.abs(inner).mean() < 0.05 * face.box[2]
    assert face.track is None


@pytest.mark.parametrize("points", [np.full((68, 2), np.nan), np.zeros((68, 2)), np.ones((68, 3))])
def test_points_that_place_no_face_have_no_pose_and_no_depth(points):
    assert fit_head(points) is None


def test_the_drawing_with_pose_shows_the_3d_points_nearest_bright_and_farthest_dark(detector):
    """draw_pose=true: axes and each fitted 3D point as a ring coloured by its depth (inferno: near yellow, far dark)."""
    from keypoints.core import drawing

    photo = cv2.imread(str(WILD / "image00473.jpg"))  # a profile: its far side is hidden
    face = max(detector(photo), key=lambda f: f.box[2] * f.box[3])
    plain, posed = drawing.draw_faces(photo, [face]), drawing.draw_faces(photo, [face], pose=True)
    near, far = np.argmax(face.keypoints_3d[:, 2]), np.argmin(face.keypoints_3d[:, 2])
    ring = lambda i: posed[int(round(face.keypoints_3d[i, 1])), int(round(face.keypoints_3d[i, 0])) + max(2, round(face.box[2] / 40))]  # noqa: E731
    assert ring(near).astype(int).sum() > 400 and ring(far).astype(int).sum() < 200  # yellow is bright, dark purple is not
    assert (plain != posed).any(axis=2).sum() > (plain != photo).any(axis=2).sum() / 4


def test_faces_fitted_together_are_fitted_as_each_alone():
    from keypoints.core.pose import fit_heads

    _, points, _, _ = labelled_wild()
    faces = [points[0], np.full((68, 2), np.nan), points[1], np.zeros((68, 2)), points[2]]
    together = fit_heads(faces)
    assert [h is None for h in together] == [False, True, False, True, False]
    for face, head in zip(faces, together):
        alone = fit_head(face)
        if head is not None:
            np.testing.assert_allclose(head.points, alone.points, atol=1e-9)
            assert head.pose == pytest.approx(alone.pose)
