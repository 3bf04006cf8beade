import cv2
import numpy as np
import pytest
import torch

from keypoints.core import geometry
from keypoints.core.annotations import read_annotations
from keypoints.training.data import KeypointsDataset
from keypoints.training.datamodule import KeypointsDataModule
from keypoints.inference.framing import FaceFrame
from keypoints.training.data.transforms import face_eval, face_train, seed_eval, seed_train
from keypoints.core.errors import KeypointsError
from keypoints.core.landmarks import FLIP


def marked_face(tmp_path, h: int = 180, w: int = 160):
    """A black PNG with a bright 3x3 mark centred on each of 68 random points."""
    rng = np.random.default_rng(0)
    points = np.stack([rng.integers(10, w - 10, 68), rng.integers(10, h - 10, 68)], 1).astype(np.float32)
    image = np.zeros((h, w, 3), np.uint8)
    for x, y in points.astype(int):
        image[y - 1 : y + 2, x - 1 : x + 2] = 255
    cv2.imwrite(str(tmp_path / "marks.png"), image)
    return points


def face_frame(size: int, random: bool = True) -> FaceFrame:
    return FaceFrame(size, 1.4, 0.2, 0.15, 30, 0.5) if random else FaceFrame(size, 1.4)


@pytest.mark.parametrize("transform, size, frame", [
    (seed_train(227), 227, None), (seed_train(96), 96, None), (seed_eval(227), 227, None),
    (face_train(brightness=0, contrast=0, blur=0, occlusion=0), 227, face_frame(227)),  # about 1:1
    (face_eval(), 227, face_frame(227, random=False)),
])  # fmt: skip
def test_augmented_points_stay_on_their_marks_and_map_back(tmp_path, transform, size, frame):
    points = marked_face(tmp_path)
    ds = KeypointsDataset(tmp_path, ["marks.png"], points[None], transform, size, frame)
    for _ in range(8):  # several random crops (and mirrors)
        item = ds[0]
        image = item["image"][0].numpy()
        assert item["image"].shape == (1, size, size) and 0.0 <= image.min() and image.max() <= 1.0
        px = geometry.denormalize(item["keypoints"].numpy(), size)
        inside = ((px >= 1) & (px <= size - 2)).all(1)
        assert inside.sum() > 50
        xs, ys = np.floor(px[inside]).astype(int).T  # pixel i spans [i, i + 1)
        assert (image[ys, xs] > 0.25).all(), "a keypoint left its mark"
        # ...and the carried affine takes the network's coordinates back to the original pixels.
        back = geometry.to_original(item["keypoints"][None], item["from_input"][None], size)[0]
        torch.testing.assert_close(back, item["keypoints_px"], atol=1e-3, rtol=0)
        mirrored = np.linalg.det(item["from_input"][:, :2].numpy()) < 0
        np.testing.assert_array_equal(item["keypoints_px"].numpy(), points[FLIP] if mirrored else points)


def test_mirrored_faces_are_relabelled(tiny_root):
    """On a mirrored face, point 36 (the outer corner of the eye on the image's left) is still on
    the left: the labels move with the pixels."""
    names, points = read_annotations(tiny_root / "training_frames_keypoints.csv")
    frame = FaceFrame(112, 1.4, flip=1.0)
    ds = KeypointsDataset(tiny_root / "training", names, points, face_eval(), 112, frame)
    for i in range(len(ds)):
        item = ds[i]
        assert np.linalg.det(item["from_input"][:, :2].numpy()) < 0
        assert item["keypoints"][36, 0] < item["keypoints"][45, 0]  # left of the image, as labelled
        assert points[i][36, 0] < points[i][45, 0]
    assert sorted(FLIP[FLIP]) == list(range(68)) and (FLIP[FLIP] == np.arange(68)).all()


def test_normalisation_round_trips_and_spans_the_input():
    pts = np.array([[0.0, 0.0], [113.5, 113.5], [227.0, 227.0]])  # corners, centre
    np.testing.assert_allclose(geometry.normalize(pts, 227), [[-2, -2], [0, 0], [2, 2]])
    np.testing.assert_allclose(geometry.denormalize(geometry.normalize(pts, 227), 227), pts)


def write_csv(root, rows: list[str], split="training_frames_keypoints.csv", encoding="utf-8"):
    root.mkdir(exist_ok=True)
    header = "," + ",".join(str(i) for i in range(136))
    (root / split).write_text("\n".join([header, *rows]) + "\n", encoding=encoding)


def datamodule(root) -> KeypointsDataModule:
    return KeypointsDataModule(str(root), 96, seed_train(96), seed_eval(96), val_fraction=0.25)


def test_missing_root_says_what_to_do(tmp_path):
    with pytest.raises(KeypointsError, match=r"nowhere does not exist: set paths.data_dir.*make data"):
        datamodule(tmp_path / "nowhere").setup("fit")


@pytest.mark.parametrize(
    "row, message",
    [
        ("a.jpg," + ",".join(["1.0"] * 135), r"training_frames_keypoints.csv:2: expected 137 columns.*got 136"),
        ("a.jpg," + ",".join(["1.0"] * 135 + ["nan"]), r"training_frames_keypoints.csv:2: NaN or infinite value for a.jpg"),
        ("a.jpg," + ",".join(["1.0"] * 135 + ["x"]), r"training_frames_keypoints.csv:2: non-numeric value"),
        ("," + ",".join(["1.0"] * 136), r"training_frames_keypoints.csv:2: file name '' is empty"),
        ("../../photos/a.jpg," + ",".join(["1.0"] * 136), r"training_frames_keypoints.csv:2: file name '../../photos/a.jpg' is not inside"),
        ("/etc/a.jpg," + ",".join(["1.0"] * 136), r"training_frames_keypoints.csv:2: file name '/etc/a.jpg' is not inside"),
        ("caf\xe9.jpg," + ",".join(["1.0"] * 136), r"training_frames_keypoints.csv:2: not UTF-8 text \(byte 0xe9\); save the CSV as UTF-8"),
        ('"' + "a" * 200_000 + '",' + ",".join(["1.0"] * 136), r"training_frames_keypoints.csv:2: not a CSV row \(field larger than field limit"),
    ],
)
def test_bad_csv_rows_are_named(tmp_path, row, message):
    write_csv(tmp_path, [row], encoding="latin-1")  # as a spreadsheet might save it: ASCII rows are the same bytes
    with pytest.raises(KeypointsError, match=message):
        datamodule(tmp_path).setup("fit")


def test_missing_and_unreadable_images_are_named(tiny_root, tmp_path):
    root = tmp_path / "root"
    (root / "training").mkdir(parents=True)
    lines = (tiny_root / "training_frames_keypoints.csv").read_text().splitlines()
    write_csv(root, lines[1:3])
    first, second = (line.split(",", 1)[0] for line in lines[1:3])
    (root / "training" / first).write_bytes((tiny_root / "training" / first).read_bytes())
    with pytest.raises(KeypointsError, match=rf"{second}: image file not found"):
        datamodule(root).setup("fit")
    (root / "training" / second).write_bytes(b"garbage")
    with pytest.raises(KeypointsError, match=rf"{second}: not a readable image"):
        datamodule(root).setup("fit")


def test_split_is_seeded_disjoint_and_test_is_separate(tiny_root):
    dm, again = datamodule(tiny_root), datamodule(tiny_root)
    dm.setup(None)
    again.setup(None)
    train, val = set(dm.datasets["train"].names), set(dm.datasets["val"].names)
    assert len(val) == 3 and len(train) == 9 and not train & val
    assert val == set(again.datasets["val"].names)
    # The test split is its own CSV and folder (file names can repeat across the two folders).
    assert len(dm.datasets["test"]) == 8 and dm.datasets["test"].image_dir == tiny_root / "test"
    batch = next(iter(dm.val_dataloader()))
    assert batch["image"].shape == (3, 1, 96, 96) and batch["keypoints_px"].shape == (3, 68, 2)
