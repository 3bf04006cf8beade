"""The detection pipeline on real photos: face stages (YuNet, Haar), framing, one batch through a real model, the CLI."""

import json
import math
import re
import shutil

import cv2
import numpy as np
import onnx
import pytest
from hydra import compose
from omegaconf import OmegaConf

import keypoints
from conftest import DATA, PHOTOS, SHARED, initialize_for, run_script
from keypoints.core import geometry
from keypoints.inference.faces import STAGES, FoundFace, load_faces, stage_config
from keypoints.inference.config import detector_config
from keypoints.core.errors import KeypointsError
from keypoints.core.annotations import read_annotations
from keypoints.inference.faces import yunet
from keypoints.core.io import read_image, shrink
from keypoints.core.landmarks import FLIP, nose_offset
from keypoints.training.module import load_checkpoint


@pytest.fixture(scope="module")
def detector(tiny_checkpoint):
    return keypoints.Detector.from_checkpoint(tiny_checkpoint)


@pytest.mark.parametrize("name, count", [("obamas.jpg", 2), ("the_beatles.jpg", 4), ("mona_lisa.jpg", 1)])
def test_finds_each_face_with_68_finite_keypoints_inside_the_photo(detector, name, count):
    faces = detector(PHOTOS / name)
    height, width = cv2.imread(str(PHOTOS / name)).shape[:2]
    assert len(faces) == count
    for face in faces:
        x, y, w, h = face.box
        assert 0 <= x and 0 <= y and x + w <= width and y + h <= height and w > 0.02 * width
        assert isinstance(face.score, float)
        assert face.keypoints.shape == (68, 2) and np.isfinite(face.keypoints).all()
        assert (face.keypoints >= 0).all() and (face.keypoints[:, 0] < width).all() and (face.keypoints[:, 1] < height).all()
    assert [f.box[0] for f in faces] == sorted(f.box[0] for f in faces)  # left to right


def test_path_bgr_gray_and_bgra_give_the_same_faces(detector):
    bgr = cv2.imread(str(PHOTOS / "obamas.jpg"))
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    by_path, by_bgr = detector(PHOTOS / "obamas.jpg"), detector(bgr)
    by_bgra, by_gray = detector(cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)), detector(gray)
    assert [f.box for f in by_path] == [f.box for f in by_bgr] == [f.box for f in by_bgra]
    np.testing.assert_array_equal(by_path[0].keypoints, by_bgra[0].keypoints)
    assert len(by_gray) == 2  # the model is grayscale: a gray photo is nothing special


@pytest.mark.parametrize("shape", [(480, 640, 3), (8, 8), (1, 1, 3)])
def test_a_photo_without_a_face_gives_an_empty_list(detector, shape):
    assert detector(np.full(shape, 128, np.uint8)) == []


def test_keypoints_follow_the_face_into_the_photos_pixels(detector):
    """The same face pasted at an offset gives the same keypoints moved by that offset: the crop
    and the mapping back use one affine, in the photo's pixels."""
    photo = cv2.imread(str(PHOTOS / "obamas.jpg"))
    face = detector.faces(photo)[0]
    canvas = cv2.copyMakeBorder(photo, 100, 0, 60, 0, cv2.BORDER_REPLICATE)  # as the crop pads
    x, y, w, h = face.box
    moved = FoundFace((x + 60, y + 100, w, h), face.score, face.roll)
    here, there = detector.keypoints([photo], [face])[0], detector.keypoints([canvas], [moved])[0]
    # float32 rounding of a turned crop: up to ~0.002 px
    np.testing.assert_allclose(there - here, np.broadcast_to([60, 100], here.shape), atol=5e-3)


def test_faces_of_one_photo_go_through_the_model_in_one_batch(detector):
    photo = cv2.imread(str(PHOTOS / "the_beatles.jpg"))
    boxes = detector.faces(photo)
    calls = []
    hook = detector.module.register_forward_hook(lambda _m, inputs, _o: calls.append(inputs[0].shape[0]))
    try:
        together = detector.keypoints([photo] * 4, boxes)
    finally:
        hook.remove()
    assert calls == [4]
    np.testing.assert_allclose(together[2], detector.keypoints([photo], [boxes[2]])[0], atol=1e-3)


def test_faces_of_several_photos_share_one_batch(detector):
    photos = [cv2.imread(str(PHOTOS / name)) for name in ("obamas.jpg", "the_beatles.jpg", "mona_lisa.jpg")]
    calls = []
    hook = detector.module.register_forward_hook(lambda _m, inputs, _o: calls.append(inputs[0].shape[0]))
    try:
        together = detector.detect_many(photos)
    finally:
        hook.remove()
    assert calls == [7] and [len(faces) for faces in together] == [2, 4, 1]
    for photo, faces in zip(photos, together):
        alone = detector(photo)
        assert [f.box for f in alone] == [f.box for f in faces]
        np.testing.assert_allclose(np.stack([f.keypoints for f in faces]), np.stack([f.keypoints for f in alone]), atol=1e-3)


@pytest.mark.parametrize("angle", [-25, 25])
def test_haar_finds_heads_tilted_25_degrees_by_the_turned_search(angle):
    tilted, _ = geometry.turned(cv2.imread(str(PHOTOS / "obamas.jpg")), angle)
    assert len(load_faces("haar")(tilted)) == 2
    assert len(load_faces("haar", angles=[0])(tilted)) < 2  # the upright search alone misses a face


@pytest.mark.parametrize("name, count", [("obamas.jpg", 2), ("the_beatles.jpg", 4), ("mona_lisa.jpg", 1)])
def test_yunet_finds_every_face_upright_and_turned_40_degrees(name, count):
    """The shipped YuNet on real photos: each face once upright, a score in (0, 1], and every one of
    them found again (a box around its turned centre) when the photo is turned by 40 degrees."""
    yunet, photo = load_faces("yunet"), cv2.imread(str(PHOTOS / name))
    upright = yunet(photo)
    assert len(upright) == count and all(0 < f.score <= 1 and abs(f.roll) < 10 for f in upright)
    centres = np.array([[x + w / 2, y + h / 2] for x, y, w, h in (f.box for f in upright)])
    for angle in (-40, 40):
        turned, turn = geometry.turned(photo, angle)
        found = yunet(turned)
        for cx, cy in geometry.apply(turn, centres):
            assert any(x <= cx <= x + w and y <= cy <= y + h for x, y, w, h in (f.box for f in found)), (angle, found)


@pytest.mark.parametrize("angle", [-40, -20, 20, 40])
def test_yunet_roll_follows_a_turned_photo(angle):
    """A photo turned anticlockwise on screen (positive angle) gives faces rolled anticlockwise (negative
    roll). At full size: the half-size first look's eye points are coarser (rolls a few degrees smaller
    here), which the second pass, on the network's own points, makes up for (docs/RESULTS.md, "Two looks")."""
    turned, _ = geometry.turned(cv2.imread(str(PHOTOS / "obamas.jpg")), angle)
    rolls = [f.roll for f in load_faces("yunet", scale=1.0)(turned)]
    assert len(rolls) == 2 and all(np.sign(r) == -np.sign(angle) and abs(r) > 8 for r in rolls), rolls


def test_the_first_crop_is_turned_upright_by_the_faces_roll(tiny_face_checkpoint):
    """With YuNet, a face in a photo turned by 30 degrees is cut out upright: the eyes the model
    finds in the crop lie level, whichever way the photo turned (YuNet at full size, whose rolls are
    the larger: test_yunet_roll_follows_a_turned_photo)."""
    detector = keypoints.Detector.from_checkpoint(tiny_face_checkpoint, faces=load_faces("yunet", scale=1.0))
    for angle in (-30, 30):
        photo, _ = geometry.turned(cv2.imread(str(PHOTOS / "obamas.jpg")), angle)
        face = max(detector.faces(photo), key=lambda f: f.score)
        to_input = detector._first_frame(face)
        eyes = np.array([[face.box[0], 0.0], [face.box[0] + np.cos(np.radians(face.roll)), np.sin(np.radians(face.roll))]])
        turned_eyes = geometry.apply(to_input, eyes)  # the face's eye line, as the crop sees it
        assert abs(np.degrees(np.arctan2(*(turned_eyes[1] - turned_eyes[0])[::-1]))) < 1e-6
        assert abs(face.roll) > 10


def test_a_photo_on_its_own_runs_the_network_on_the_workers_threads_a_folder_batch_on_one_each():
    """ort_threads=null (the default): one photo at a time, the keypoint network has the cores
    (`workers` ONNX Runtime threads); a batch dealt to the workers' threads runs it on one thread in each,
    with the same points; YuNet stays on one. ort_threads=N: both networks on N, everywhere."""
    photos = [cv2.imread(str(PHOTOS / name)) for name in ("obamas.jpg", "mona_lisa.jpg")]
    detector = keypoints.Detector(workers=2)
    threads = lambda predictor: predictor.session.get_session_options().intra_op_num_threads  # noqa: E731
    used = []

    class Spy:  # a session that notes the threads of each pass run on it
        def __init__(self, session):
            self.session = session

        def run(self, *args):
            used.append(self.session.get_session_options().intra_op_num_threads)
            return self.session.run(*args)

        def __getattr__(self, name):
            return getattr(self.session, name)

    for predictor in (detector.predictor, detector._network()):
        predictor.session = Spy(predictor.session)
    alone = [detector(photo) for photo in photos]
    assert set(used) == {2} and detector.faces.threads == 1
    used.clear()
    together = detector.detect_many(photos)
    assert set(used) == {1}
    for a, b in zip(alone, together):
        np.testing.assert_allclose([f.keypoints for f in a], [f.keypoints for f in b], atol=1e-3)
    fixed = keypoints.Detector(ort_threads=2, workers=2)  # an explicit setting: the one session, for both networks
    assert fixed._network() is fixed.predictor and threads(fixed.predictor) == 2 and fixed.faces.threads == 2


def test_crop_samples_like_the_training_resize():
    """geometry.crop with a plain scaling reproduces cv2.resize (what made every training input),
    down to half size; beyond that it pre-filters, which a bilinear resize does not."""
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 256, (200, 200, 3), dtype=np.uint8), (5, 5), 2)
    for size in (227, 120):
        s = size / 200
        cropped = geometry.crop(image, np.array([[s, 0, 0], [0, s, 0]]), size).astype(int)
        assert np.abs(cropped - cv2.resize(image, (size, size)).astype(int)).max() <= 1


def test_a_gray_crop_is_the_colour_crop_in_gray_within_a_grey_level():
    """gray=True turns the photo's sampled region gray before the pyramid (a third of its work): the
    same values as graying the colour crop afterwards, as the eval pipeline did, within one grey level."""
    image = cv2.imread(str(PHOTOS / "obamas.jpg"))
    for s in (0.9, 0.3, 0.1):  # no pyramid, one level, three levels
        a = np.array([[s, 0, -30 * s], [0, s, -40 * s]])
        gray = geometry.crop(image, a, 96, gray=True)
        assert gray.shape == (96, 96)
        assert np.abs(gray.astype(int) - cv2.cvtColor(geometry.crop(image, a, 96), cv2.COLOR_RGB2GRAY).astype(int)).max() <= 1


def test_crop_of_a_large_photo_samples_like_the_whole_photo_pyramid():
    """crop sends only the region it samples through the pyramid; the pixels must be those of the
    whole photo's pyramid, for faces inside, turned, mirrored and over the photo's edge."""
    image = cv2.imread(str(PHOTOS / "the_beatles.jpg"))  # 3648 x 2406
    h, w = image.shape[:2]

    def whole_pyramid(a, size):  # the plain algorithm: the whole photo halved until the scale fits
        a = np.hstack([a[:, :2], a[:, 2:] + a[:, :2].sum(axis=1, keepdims=True) / 2 - 0.5])
        full = image
        while np.sqrt(abs(np.linalg.det(a[:, :2]))) < 0.5:
            full, a[:, :2] = cv2.pyrDown(full), a[:, :2] * 2
        return cv2.warpAffine(full, a, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    cases = [((1500, 900), 420, 0, False), ((1501, 903), 700, 25, False), ((2000, 1200), 333, -30, True),
             ((60, 50), 500, 10, False), ((w - 40, h - 30), 600, 0, True), ((1800, 1200), 1900, 0, False)]
    for centre, side, angle, mirror in cases:
        a = geometry.square_to_input(centre, side, 112, angle=angle, mirror=mirror)
        np.testing.assert_array_equal(geometry.crop(image, a, 112), whole_pyramid(a.copy(), 112), err_msg=str(centre))


def test_the_mirror_frames_crop_is_the_crop_turned_left_right():
    """predict_crops takes a face's mirror image as its crop turned left-right, instead of cutting
    it out of the photo again through the mirrored frame: the two must be the same pixels (within the
    grey level or two of warpAffine's fixed-point rounding), small faces and faces through the pyramid."""
    image = cv2.imread(str(PHOTOS / "the_beatles.jpg"))
    mirror = geometry.square_to_input((48, 48), 96, 96, mirror=True)
    for centre, side, angle in [((1500, 900), 60, 0), ((1501, 903), 700, 25), ((2000, 1200), 333, -30), ((40, 30), 200, 5)]:
        a = geometry.square_to_input(centre, side, 96, angle=angle)
        for gray in (True, False):
            direct = geometry.crop(image, geometry.compose(mirror, a), 96, gray=gray).astype(int)
            turned = geometry.crop(image, a, 96, gray=gray)[:, ::-1].astype(int)
            assert np.abs(direct - turned).max() <= 2 and np.abs(direct - turned).mean() < 0.01, (centre, gray)


def test_face_crop_models_are_framed_refined_and_flip_averaged(tiny_face_checkpoint):
    """A face-crop model frames each Haar box by the keypoint box it predicts, then re-frames on its
    own keypoints: two passes, each with the crops and their mirror images in one batch."""
    detector = keypoints.Detector.from_checkpoint(tiny_face_checkpoint, flip=True)
    assert detector.frame is not None and detector.frame.scale == 1.4 and not detector.frame.random
    batches = []
    predict = detector.predictor
    detector.predictor = lambda batch: batches.append(batch.shape) or predict(batch)
    faces = detector(PHOTOS / "obamas.jpg")
    assert len(faces) == 2 and batches == [(4, 1, 112, 112), (4, 1, 112, 112)]
    assert all(np.isfinite(face.keypoints).all() for face in faces)


def test_flip_averaging_is_mirror_symmetric(tiny_face_checkpoint):
    """Averaging a crop with its mirror makes the result exactly mirror-symmetric: the mirrored
    photo gives the mirrored keypoints with left and right swapped. A wrong un-mirroring breaks it."""
    detector = keypoints.Detector.from_checkpoint(tiny_face_checkpoint)
    image = cv2.imread(str(PHOTOS / "obamas.jpg"))
    width, size = image.shape[1], detector.size
    to_input = detector._first_frame(detector.faces(image)[0])
    photo_mirror = np.array([[-1.0, 0, width], [0, 1, 0]])
    input_mirror = geometry.square_to_input((size / 2, size / 2), size, size, mirror=True)
    points = detector.predict_crops([image], [to_input], flip=True)[0]
    mirrored = detector.predict_crops([image[:, ::-1].copy()], [geometry.compose(input_mirror, geometry.compose(to_input, photo_mirror))], flip=True)[0]
    np.testing.assert_allclose(geometry.apply(photo_mirror, mirrored)[FLIP], points, atol=1e-3)
    assert np.abs(detector.predict_crops([image], [to_input])[0] - points).max() > 1e-3  # the averaging did something


@pytest.mark.parametrize("name", STAGES)
def test_each_face_stage_is_one_typed_config_for_hydra_and_python(name):
    """detector=<name> composes the typed config that keypoints.Detector(faces=<name>) reads, with the
    same defaults; a key the stage does not have is refused in one line, from Python as from Hydra."""
    with initialize_for("detect"):
        cfg = compose("detect", overrides=[f"detector={name}"])
        with pytest.raises(Exception, match="Could not override 'detector.faces.min_scr'"):
            compose("detect", overrides=[f"detector={name}", "detector.faces.min_scr=0.5"])
        added = compose("detect", overrides=[f"detector={name}", "+detector.faces.min_scr=0.5"])  # Hydra lets + add it ...
    with pytest.raises(KeypointsError, match=r"^detector.faces.min_scr: not a setting of detector.faces \(one of "):
        detector_config(added)  # ... and the check refuses it
    assert OmegaConf.get_type(cfg.detector.faces) is STAGES[name]
    assert cfg.detector.faces == stage_config(name)
    with pytest.raises(KeypointsError, match=r"^detector.faces.min_scr: Key 'min_scr' not in"):
        load_faces(name, min_scr=0.5)
    built = load_faces(cfg.detector.faces)
    assert type(built).__name__ == cfg.detector.faces._target_.rsplit(".", 1)[1]
    assert built.keypoint_box == dict(cfg.detector.faces.keypoint_box)


@pytest.mark.parametrize("name, knob, value, message", [
    ("yunet", "min_score", 1.5, "detector.faces.min_score=1.5: must be a YuNet score between 0 and 1"),
    ("yunet", "max_side", "big", "detector.faces.max_side: Value 'big' of type 'str' could not be converted to Integer"),
    ("yunet", "max_side", 16, "detector.faces.max_side=16: must be a whole number >= 32"),
    ("yunet", "nms_threshold", 0, "detector.faces.nms_threshold=0.0: must be an IoU in (0, 1]"),
    ("yunet", "scale", 0, "detector.faces.scale=0.0: must be a share of the photo's size in (0, 1]"),
    ("yunet", "scale", 1.5, "detector.faces.scale=1.5: must be a share of the photo's size in (0, 1]"),
    ("yunet", "recheck_score", 1.5, "detector.faces.recheck_score=1.5: must be null or a YuNet score between 0 and 1"),
    ("haar", "scale_factor", 1.0, "detector.faces.scale_factor=1.0: must be a number > 1"),
    ("haar", "angles", [], "detector.faces.angles=[]: must be a non-empty list of degrees"),
    ("yunet", "colour", "red", "detector.faces.colour: Key 'colour' not in 'YuNetFaces'"),
])  # fmt: skip
def test_bad_face_stage_knobs_are_one_line(name, knob, value, message):
    with pytest.raises(KeypointsError, match=re.escape(message)):
        load_faces(name, **{knob: value})


def test_bad_face_stage_knobs_through_the_cli_are_one_line(tmp_path):
    proc = run_script("detect.py", f"input={PHOTOS / 'obamas.jpg'}", f"output={tmp_path}/out", "detector.faces.min_score=-1",
                      f"hydra.run.dir={tmp_path / 'run'}", check=False)
    assert proc.returncode == 2 and proc.stderr.strip() == "error: detector.faces.min_score=-1.0: must be a YuNet score between 0 and 1"


@pytest.mark.parametrize("scale, seen", [(1.0, (422, 640)), (0.5, (250, 380))])  # 500 x 759: max_side 640 caps it at 1.0
def test_yunet_sees_the_photo_at_its_scale_and_finds_the_same_faces(scale, seen):
    photo = cv2.imread(str(PHOTOS / "obamas.jpg"))
    full, stage = load_faces("yunet", scale=1.0), load_faces("yunet", scale=scale)
    shapes, detect = [], stage.detect
    stage.detect = lambda image, *score: (shapes.append(image.shape[:2]), detect(image, *score))[1]
    found, expected = stage(photo), full(photo)
    assert abs(shapes[0][0] - seen[0]) <= 1 and shapes[0][1] == seen[1]
    assert len(found) == len(expected) == 2
    for face, reference in zip(found, expected):  # both left to right; a half-size copy moves a box by a few pixels
        assert np.abs(np.subtract(face.box, reference.box)).max() <= 0.05 * max(reference.box[2:])


def test_a_scale_too_small_for_a_face_finds_none_in_one_look_and_the_full_size_look_in_two():
    photo = cv2.imread(str(PHOTOS / "obamas.jpg"))  # 759 px: 0.0005 of it rounds to 0, which shrink reads as no limit
    full = load_faces("yunet", scale=1.0)(photo)
    assert full and load_faces("yunet", scale=0.0005, recheck_score=None)(photo) == []
    assert load_faces("yunet", scale=0.0005)(photo) == full  # the first look found nothing: the full-size look


def test_a_profile_weak_on_the_half_size_copy_is_found_by_the_second_look():
    """A profile YuNet scores 0.68 on the whole photo and under min_score (0.6) on its half-size copy:
    one look at half size loses it; the default's second look, at full size on a crop around the
    candidate, finds it where the full-size look does."""
    photo = cv2.imread(str(SHARED / "data" / "wild" / "aflw" / "labelled" / "image00696.jpg"))
    full = load_faces("yunet", scale=1.0)(photo)
    assert len(full) == 1 and load_faces("yunet", scale=0.5, recheck_score=None)(photo) == []
    found = load_faces("yunet")(photo)
    assert len(found) == 1 and found[0].score >= 0.6
    assert np.abs(np.subtract(found[0].box, full[0].box)).max() <= 0.05 * max(full[0].box[2:])


def test_the_second_look_keeps_a_candidate_only_where_the_full_size_look_scores_it():
    """Candidates the first look scores under min_score that are not faces stay out: on the shared
    photos the default finds the faces the full-size look finds, no more."""
    weak = 0
    for name in ("obamas.jpg", "the_beatles.jpg", "mona_lisa.jpg"):
        photo = cv2.imread(str(PHOTOS / name))
        stage = load_faces("yunet")
        first = stage._look(photo, min(640, round(0.5 * max(photo.shape[:2]))), 0.1)  # the first look, as the stage takes it
        weak += int((first[:, 14] < 0.6).sum())
        full, found = load_faces("yunet", scale=1.0)(photo), stage(photo)
        assert len(found) == len(full), name
    assert weak > 0  # there were candidates to look at again


def test_a_photo_with_more_weak_candidates_than_pixels_to_recheck_gets_the_full_size_look():
    """Re-checks never cost more than the full-size look: with every candidate weak (recheck_score=0),
    their crops add up to more than the photo, and the stage looks at the whole photo once instead."""
    photo = cv2.imread(str(PHOTOS / "obamas.jpg"))  # 759 px: a first look at 380, the full one at 640
    stage, rechecked = load_faces("yunet", recheck_score=0.0), []
    recheck = stage._recheck
    stage._recheck = lambda *args: (rechecked.append(1), recheck(*args))[1]
    assert stage(photo) == load_faces("yunet", scale=1.0)(photo) and len(stage(photo)) == 2
    assert rechecked == []


def test_a_missing_or_corrupt_yunet_file_is_one_line(tmp_path):
    with pytest.raises(KeypointsError, match=f"{tmp_path}/none.onnx: YuNet model file not found"):
        load_faces("yunet", model=str(tmp_path / "none.onnx"))
    (tmp_path / "bad.onnx").write_bytes(b"\x08\x07garbage" * 50)
    with pytest.raises(KeypointsError, match=f"{tmp_path}/bad.onnx: not a YuNet ONNX model"):
        load_faces("yunet", model=str(tmp_path / "bad.onnx"))
    with pytest.raises(KeypointsError, match="faces='mtcnn': unknown face stage"):
        keypoints.Detector(faces="mtcnn")


@pytest.mark.parametrize("name", ["obamas.jpg", "the_beatles.jpg", "mona_lisa.jpg"])
def test_yunet_under_onnx_runtime_finds_what_opencv_finds(name, tiny_root):
    """The default runtime (ONNX Runtime, keypoints' own decoding) and cv2.FaceDetectorYN give the
    same rows on real photos, upright, turned, and on small test-split photos."""
    by_ort, by_cv = load_faces("yunet"), load_faces("yunet", runtime="opencv")
    assert by_ort.session is not None and by_cv.net is not None
    photo = cv2.imread(str(PHOTOS / name))
    small = [cv2.imread(str(p)) for p in sorted((tiny_root / "test").iterdir())[:4]]
    for image in [photo, geometry.turned(photo, 30)[0], *small]:
        image = shrink(image, by_ort.max_side)[0]
        by_cv.net.setInputSize((image.shape[1], image.shape[0]))
        expected = by_cv.net.detect(image)[1]
        got = by_ort.detect(image)
        assert len(got) == (0 if expected is None else len(expected)) > 0
        order = lambda rows: rows[np.lexsort((rows[:, 1], rows[:, 0]))]  # noqa: E731
        np.testing.assert_allclose(order(got), order(expected), atol=0.05)
    # the whole stage, two looks at the default settings: the same faces
    assert [f.box for f in by_ort(photo)] == [f.box for f in by_cv(photo)]


def test_the_shipped_free_size_yunet_is_the_shipped_yunet():
    """yunet_n_dynamic.onnx differs from the authors' file only in its input and output sizes."""
    fixed, free = onnx.load(str(yunet.SHIPPED)), onnx.load(str(yunet.SHIPPED_DYNAMIC))
    weights = lambda m: {i.name: onnx.numpy_helper.to_array(i).tobytes() for i in m.graph.initializer}  # noqa: E731
    assert weights(fixed) == weights(free) and len(weights(free)) > 50
    assert [n.SerializeToString() for n in fixed.graph.node] == [n.SerializeToString() for n in free.graph.node]
    assert [d.dim_param for d in free.graph.input[0].type.tensor_type.shape.dim[2:]] == ["height", "width"]


def test_a_fixed_size_yunet_export_under_onnx_runtime_is_one_line():
    with pytest.raises(KeypointsError, match="yunet_n_640_640.onnx: a YuNet export with a fixed input size.*runtime=opencv runs it"):
        load_faces("yunet", model=str(yunet.SHIPPED))
    assert len(load_faces("yunet", model=str(yunet.SHIPPED), runtime="opencv")(cv2.imread(str(PHOTOS / "obamas.jpg")))) == 2
    with pytest.raises(KeypointsError, match=re.escape("detector.faces.runtime='tensorflow': must be onnxruntime or opencv")):
        load_faces("yunet", runtime="tensorflow")


def test_min_score_drops_faces_below_it():
    photo = cv2.imread(str(PHOTOS / "the_beatles.jpg"))
    scores = sorted(f.score for f in load_faces("yunet")(photo))
    assert len(load_faces("yunet", min_score=(scores[0] + scores[1]) / 2)(photo)) == len(scores) - 1


def test_unreadable_files_and_bad_cascades_are_keypoints_errors(detector, tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(KeypointsError, match="empty.jpg: not a readable image"):
        detector(tmp_path / "empty.jpg")
    with pytest.raises(KeypointsError, match="missing.jpg: image file not found"):
        detector(tmp_path / "missing.jpg")
    with pytest.raises(KeypointsError, match="nope.xml: not a Haar cascade"):
        load_faces("haar", cascade="nope.xml")


def _check_record(record: dict, width: int, height: int, faces: int) -> None:
    """The documented JSON schema (docs/JSON.md), field by field."""
    assert set(record) == {"image", "width", "height", "faces"} and isinstance(record["image"], str)
    assert (record["width"], record["height"]) == (width, height)
    assert len(record["faces"]) == faces
    for face in record["faces"]:
        assert set(face) == {"box", "score", "keypoints", "pose", "keypoints_3d"}  # a photo's faces have no "track"
        assert face["pose"] is None or (set(face["pose"]) == {"yaw", "pitch", "roll"}
                                        and all(isinstance(v, float) for v in face["pose"].values()))
        assert len(face["box"]) == 4 and all(isinstance(v, int) for v in face["box"])
        assert face["score"] is None or isinstance(face["score"], float)
        assert len(face["keypoints"]) == 68
        assert all(len(p) == 2 and all(isinstance(v, float) and math.isfinite(v) for v in p) for p in face["keypoints"])


def test_cli_on_a_folder_writes_json_png_and_video_and_reports_bad_files(tiny_checkpoint, tmp_path):
    source, out = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    for name in ("obamas.jpg", "the_beatles.jpg"):
        shutil.copy(PHOTOS / name, source / name)
    shutil.copy(PHOTOS / "mona_lisa.jpg", source / "mona.jpg")  # two files, one stem: both kept
    cv2.imwrite(str(source / "mona.png"), cv2.imread(str(PHOTOS / "mona_lisa.jpg")))
    (source / "truncated.jpg").write_bytes((PHOTOS / "obamas.jpg").read_bytes()[:2000])
    (source / "empty.png").write_bytes(b"")
    (source / "notes.txt").write_text("not a picture")
    photo = cv2.resize(cv2.imread(str(PHOTOS / "obamas.jpg")), (380, 250))
    writer = cv2.VideoWriter(str(source / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 5, (380, 250))
    for i in range(3):
        writer.write(cv2.flip(photo, 1) if i % 2 else photo)
    writer.release()

    proc = run_script("detect.py", f"input={source}", f"output={out}", f"ckpt_path={tiny_checkpoint}",
                      f"hydra.run.dir={tmp_path / 'run'}", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    for bad in ("truncated.jpg", "empty.png"):  # named as images: failures
        assert f"{source / bad}: not a readable image" in proc.stderr
    assert "left out 1 file(s) that are not images or videos by their names (notes.txt)" in proc.stdout  # as image tools do
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: 2 of 7 files failed: empty.png (not a readable image), truncated.jpg (not a readable image)")

    for name, count in (("obamas", 2), ("the_beatles", 4)):
        photo = cv2.imread(str(PHOTOS / f"{name}.jpg"))
        _check_record(json.loads((out / f"{name}.json").read_text()), photo.shape[1], photo.shape[0], count)
        drawn = cv2.imread(str(out / f"{name}.png"))
        assert drawn.shape == photo.shape and np.abs(drawn.astype(int) - photo).max() > 100
    lines = [json.loads(line) for line in (out / "clip.jsonl").read_text().splitlines()]
    assert [line["frame"] for line in lines] == [0, 1, 2] and all(len(line["faces"]) == 2 for line in lines)
    assert all(isinstance(face["track"], int) for line in lines for face in line["faces"])
    video = cv2.VideoCapture(str(out / "clip.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 3 and video.read()[1].shape == (250, 380, 3)
    assert not (out / "truncated.json").exists()
    for name in ("mona.jpg", "mona.png"):
        assert len(json.loads((out / f"{name}.json").read_text())["faces"]) == 1 and (out / f"{name}.png").is_file()


def test_cli_on_one_bad_file_is_one_line_naming_it(tiny_checkpoint, tmp_path):
    """The exit code and stderr a shell sees, so a child process."""
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    proc = run_script("detect.py", f"input={tmp_path / 'broken.jpg'}", f"output={tmp_path / 'out'}",
                      f"ckpt_path={tiny_checkpoint}", f"hydra.run.dir={tmp_path / 'run'}", check=False, process=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"error: {tmp_path / 'broken.jpg'}: not a readable image (empty, corrupt or not an image format)"


def test_a_profile_is_not_turned_by_its_eye_line():
    """On a profile YuNet's two eye points crowd together and their line says little of the roll: with
    max_nose_offset the face is left unturned (a frontal one keeps its roll), and so is the second pass
    on the model's own points (landmarks.nose_offset)."""
    profile = read_image(SHARED / "data" / "wild" / "aflw" / "labelled" / "image00118.jpg", upright=False)
    tilted = cv2.warpAffine(read_image(PHOTOS / "obamas.jpg"), cv2.getRotationMatrix2D((400, 300), 25, 1.0), (800, 600))
    plain, guarded = load_faces("yunet", max_nose_offset=None, scale=1.0), load_faces("yunet", max_nose_offset=0.8, scale=1.0)
    assert abs(max(plain(profile), key=lambda f: f.box[2]).roll) > 10
    assert max(guarded(profile), key=lambda f: f.box[2]).roll == 0.0
    assert [round(f.roll) for f in guarded(tilted)] == [round(f.roll) for f in plain(tilted)] and guarded(tilted)
    front = read_annotations(DATA / "training_frames_keypoints.csv")[1][0]
    assert abs(nose_offset(front)) < 0.3
    side = front.copy()
    side[30, 0] += 2 * np.linalg.norm(front[42:48].mean(axis=0) - front[36:42].mean(axis=0))
    assert nose_offset(side) > 1.5



def test_workers_share_a_batch_and_give_the_same_faces_in_the_same_order():
    """A folder run's batches dealt to two threads (`workers`): each photo's faces and points exactly
    as one thread gives them, in the photos' order; a face stage that is not thread-safe stays on one."""
    photos = [read_image(PHOTOS / name) for name in ("obamas.jpg", "mona_lisa.jpg", "the_beatles.jpg")]
    photos += [read_image(p) for p in sorted((DATA / "test").glob("*.jpg"))[:5]]
    alone, shared = keypoints.Detector(workers=1), keypoints.Detector(workers=2)
    expected, got = alone.detect_many(photos), shared.detect_many(photos)
    assert shared._pool is not None and alone._pool is None
    assert [len(faces) for faces in got] == [len(faces) for faces in expected] and sum(map(len, got)) >= 10
    for faces, want in zip(got, expected):
        for face, other in zip(faces, want):
            assert face.box == other.box and np.array_equal(face.keypoints, other.keypoints)
    haar = keypoints.Detector(faces="haar", workers=2)
    haar.detect_many(photos[:3])
    assert haar._pool is None
    with pytest.raises(KeypointsError, match=r"^workers=0: must be null or a whole number >= 1"):
        keypoints.Detector(workers=0)
