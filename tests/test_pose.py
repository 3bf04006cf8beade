"""Head pose from the 68 keypoints (keypoints.core.pose): its convention, turned and mirrored photos, profiles, the JSON."""

import json

import cv2
import numpy as np
import pytest

import keypoints
from conftest import PHOTOS, SHARED
from keypoints.core import geometry
from keypoints.core.pose import MEAN_FACE, Pose, head_pose

WILD = SHARED / "data" / "wild" / "aflw" / "labelled"
# Profiles, chosen by looking at them: the nose in outline, the far eye hidden; +1: the nose points
# to the photo's right, -1: to its left
PROFILES = {"image01790.jpg": -1, "image01126.jpg": -1, "image02745.jpg": 1, "image00473.jpg": 1,
            "image01586.jpg": 1, "image03664.jpg": 1, "image00460.jpg": 1, "image04105.jpg": 1}


@pytest.fixture(scope="module")
def detector():
    return keypoints.Detector()


@pytest.mark.parametrize("yaw, pitch, roll", [(30, 0, 0), (0, 20, 0), (0, 0, -15), (-60, 10, 25)])
def test_the_mean_face_seen_at_a_known_pose_gives_that_pose(yaw, pitch, roll):
    """The convention, on the 3D mean face projected by a pinhole camera: a positive yaw turns the
    nose to the photo's right, a positive pitch lifts it, a positive roll tilts the head clockwise."""
    camera = np.array([[640.0, 0, 320], [0, 640, 240], [0, 0, 1]])
    rvec = cv2.Rodrigues(Pose(yaw, pitch, roll).matrix())[0]
    points = cv2.projectPoints(MEAN_FACE, rvec, np.array([0, 0, 600.0]), camera, None)[0][:, 0]
    got = head_pose(points, (480, 640))
    np.testing.assert_allclose([got.yaw, got.pitch, got.roll], [yaw, pitch, roll], atol=1e-3)
    nose, eyes = points[30], (points[36] + points[45]) / 2
    if yaw:
        assert np.sign(nose[0] - eyes[0]) == np.sign(yaw)


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
    assert set(record) == {"box", "score", "keypoints", "pose"}
    assert record["pose"] == {"yaw": round(face.pose.yaw, 1), "pitch": round(face.pose.pitch, 1),
                              "roll": round(face.pose.roll, 1)}
    assert face.track is None


def test_points_that_are_not_finite_have_no_pose():
    assert head_pose(np.full((68, 2), np.nan), (480, 640)) is None
