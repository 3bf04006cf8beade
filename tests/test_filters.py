"""Overlays: where each kind lands (on labelled faces), roll, alpha blending, resolution of names, the CLI."""

import shutil
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from hydra import compose

import keypoints
from conftest import DATA, OVERLAYS, PHOTOS, initialize_for, run_script
from keypoints.inference import filters
from keypoints.core import landmarks
from keypoints.core.annotations import read_annotations
from keypoints.core.errors import KeypointsError


@pytest.fixture(scope="module")
def labelled_face():
    """A real training frame and its ground-truth keypoints: placement is tested on true landmarks."""
    names, points = read_annotations(DATA / "training_frames_keypoints.csv")
    i = names.index("Lincoln_Chafee_52.jpg")
    return cv2.imread(str(DATA / "training" / names[i])), points[i].astype(np.float64)


def changed(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    return np.abs(after.astype(int) - before).max(axis=2) > 8


def at(mask: np.ndarray, points: np.ndarray) -> bool:
    """Whether `mask` is set at the mean of `points`."""
    x, y = np.round(points.reshape(-1, 2).mean(axis=0)).astype(int)
    return bool(mask[y, x])


@pytest.mark.parametrize("spec", ["sunglasses", "moustache", "hat", "built-in"])
def test_each_kind_lands_where_it_belongs(labelled_face, spec):
    image, points = labelled_face
    overlay, kind = filters.load_overlay(spec, OVERLAYS) if spec != "built-in" else (filters.default_sunglasses(), "sunglasses")
    mask = changed(image, filters.apply(image, [SimpleNamespace(keypoints=points)], overlay, kind))
    nose_to_lip, chin = points[[33, 51]], points[8]
    above_brows = points[17:27].mean(axis=0) - [0, 0.4 * (points[16, 0] - points[0, 0])]
    assert at(mask, points[36:42]) == at(mask, points[42:48]) == (kind == "sunglasses")
    assert at(mask, nose_to_lip) == (kind == "moustache")
    assert at(mask, above_brows) == (kind == "hat")
    assert not at(mask, chin)


def test_overlay_turns_with_the_roll_of_the_eyes(labelled_face):
    _, points = labelled_face
    turn = cv2.getRotationMatrix2D((100.0, 100.0), -20, 1.0)  # 20 degrees clockwise on screen
    turned = points @ turn[:, :2].T + turn[:, 2]
    assert landmarks.roll(turned) - landmarks.roll(points) == pytest.approx(20, abs=1e-6)
    affine = filters.placement(turned, (300, 100), "sunglasses")
    assert np.degrees(np.arctan2(affine[1, 0], affine[0, 0])) == pytest.approx(landmarks.roll(turned))


def test_alpha_blending_keeps_transparent_pixels_and_mixes_half_transparent_ones():
    image = np.full((40, 40, 3), 200, np.uint8)
    overlay = np.zeros((10, 20, 4), np.uint8)
    overlay[:, :10] = (0, 0, 255, 255)  # opaque red
    overlay[:, 10:] = (255, 0, 0, 128)  # half-transparent blue
    overlay[0, 0, 3] = 0  # a transparent corner
    filters.blend(image, overlay, np.array([[1.0, 0, 10], [0, 1.0, 10]]))
    assert tuple(image[15, 13]) == (0, 0, 255)
    assert np.allclose(image[15, 25], (228, 100, 100), atol=2)
    assert (image[:10] == 200).all() and (image[:, 31:] == 200).all()


def test_named_overlays_resolve_in_the_overlay_folder(tmp_path):
    hat, kind = filters.load_overlay("hat", OVERLAYS)
    assert kind == "hat" and hat.shape[2] == 4 and hat.shape[:2] == cv2.imread(str(OVERLAYS / "straw_hat.png")).shape[:2]
    built_in, kind = filters.load_overlay("sunglasses", tmp_path)  # no file there: the built-in pair
    assert kind == "sunglasses" and np.array_equal(built_in, filters.default_sunglasses())
    with pytest.raises(KeypointsError, match="moustache.png"):
        filters.load_overlay("moustache", tmp_path)
    with pytest.raises(KeypointsError, match="sunglases: overlay file not found"):
        filters.load_overlay("sunglases", OVERLAYS)  # a typo is not mistaken for a file of unknown kind
    shutil.copy(OVERLAYS / "moustache.png", tmp_path / "curly.png")
    with pytest.raises(KeypointsError, match="curly.png: can't tell where"):
        filters.load_overlay(str(tmp_path / "curly.png"))
    assert filters.load_overlay(str(tmp_path / "curly.png"), kind="moustache")[1] == "moustache"
    assert filters.load_overlay(str(OVERLAYS / "straw_hat.png"))[1] == "hat"  # the kind is in its name
    with pytest.raises(KeypointsError, match="obamas.jpg: overlay has no alpha channel"):
        filters.load_overlay(str(PHOTOS / "obamas.jpg"), kind="hat")
    cv2.imwrite(str(tmp_path / "clear_hat.png"), np.zeros((20, 40, 4), np.uint8))
    with pytest.raises(KeypointsError, match="clear_hat.png: overlay is fully transparent"):
        filters.load_overlay(str(tmp_path / "clear_hat.png"))


def test_an_overlay_above_the_pixel_budget_is_refused_by_its_header(tmp_path, monkeypatch):
    big = tmp_path / "big_hat.png"
    cv2.imwrite(str(big), np.full((300, 400, 4), 255, np.uint8))
    assert filters.load_overlay(str(big))[0].shape == (300, 400, 4)
    monkeypatch.setattr(filters, "MAX_OVERLAY_PIXELS", 100_000)
    decoded = []
    monkeypatch.setattr(filters, "decode", lambda *a, **k: decoded.append(a))
    with pytest.raises(KeypointsError, match=r"big_hat.png: overlay of 0.1 megapixels, above the limit of 0.1 \(4096 x 4096\); scale it down"):
        filters.load_overlay(str(big))
    assert not decoded  # refused before any pixel was decoded


def test_the_filter_cli_and_the_python_api_read_one_placements_file():
    """No copy to keep in sync: filter.py's config composes the packaged overlays file that
    keypoints.inference.filters reads as its defaults (a sunglasses placement changed on the command line
    reaches the CLI only)."""
    with initialize_for("filter"):
        cfg = compose("filter", overrides=["input=x.jpg", "placements.sunglasses.width=1.5"])
    assert cfg.placements.sunglasses.width == 1.5 and filters.PLACEMENTS["sunglasses"]["width"] == 1.0
    assert {k: dict(v) for k, v in cfg.placements.items() if k != "sunglasses"} == {
        k: v for k, v in filters.PLACEMENTS.items() if k != "sunglasses"}
    assert dict(cfg.overlay_files) == filters.OVERLAY_FILES


def test_detected_faces_get_sunglasses_and_nothing_else_changes(tiny_checkpoint):
    photo = cv2.imread(str(PHOTOS / "the_beatles.jpg"))
    faces = keypoints.Detector.from_checkpoint(tiny_checkpoint)(photo)
    overlay, kind = filters.load_overlay("sunglasses", OVERLAYS)
    mask = changed(photo, filters.apply(photo, faces, overlay, kind))
    near = np.zeros_like(mask)
    for face in faces:
        x, y, w, h = face.box
        near[max(0, y - h // 2):y + 2 * h, max(0, x - w // 2):x + w + w // 2] = True
        assert mask[y:y + h, x:x + w].mean() > 0.05  # each face got its share
    assert mask.any() and not (mask & ~near).any()


def test_cli_puts_a_hat_on_each_face_of_a_photo(tiny_checkpoint, tmp_path):
    run_script("filter.py", f"input={PHOTOS / 'obamas.jpg'}", f"output={tmp_path / 'out'}", "overlay=hat",
               f"overlay_dir={OVERLAYS}", f"ckpt_path={tiny_checkpoint}", f"hydra.run.dir={tmp_path / 'run'}")
    photo, result = cv2.imread(str(PHOTOS / "obamas.jpg")), cv2.imread(str(tmp_path / "out" / "obamas.png"))
    assert result.shape == photo.shape
    mask = changed(photo, result)
    left, right = mask[:, : photo.shape[1] // 2], mask[:, photo.shape[1] // 2 :]
    assert left.sum() > 1000 and right.sum() > 1000  # one hat per face, both faces
    assert not mask[-100:].any()  # nothing below the faces
    assert not (tmp_path / "out" / "obamas.json").exists()
