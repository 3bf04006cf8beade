"""The default pipeline's speed work, checked for correctness (the times come from scripts/benchmark_speed.py):
the second pass only where the frame moves, the stage clock, the shipped ONNX copies, the default backend."""

from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

import keypoints
from conftest import PHOTOS
from keypoints.core import geometry
from keypoints.benchmarks.budget import STAGES, budget_set
from keypoints.inference.model_files import DEFAULT_INT8_MODEL, DEFAULT_MODEL, DEFAULT_ONNX_MODEL
from keypoints.inference.backends import resolve_backend
from keypoints.core.errors import KeypointsError
from keypoints.training import export
from keypoints.inference.onnx_runtime import OnnxPredictor
from keypoints.training.predictors import TorchPredictor


@pytest.fixture(scope="module")
def detector():
    return keypoints.Detector()


def test_frame_move_is_the_largest_corner_shift_as_a_share_of_the_side():
    a = geometry.square_to_input((100, 80), 60, 112)
    assert geometry.frame_move(a, a, 112) == pytest.approx(0.0, abs=1e-9)
    # the same square 6 photo pixels to the right: 6 * 112/60 input pixels, every corner
    assert geometry.frame_move(a, geometry.square_to_input((106, 80), 60, 112), 112) == pytest.approx(0.1)
    # 10% larger: the corners move out by 5% of the side each way
    assert geometry.frame_move(a, geometry.square_to_input((100, 80), 66, 112), 112) == pytest.approx(0.05)
    turned = geometry.frame_move(a, geometry.square_to_input((100, 80), 60, 112, angle=10), 112)
    assert 0.05 < turned < 0.15  # a turn moves corners too


@pytest.mark.parametrize("threshold", ["between", 0.0, 10.0])
def test_the_second_pass_refines_exactly_the_faces_whose_frame_moves_more_than_refine_min_move(threshold):
    """Each face's move from its first frame to the frame on its first keypoints decides: the faces
    above the threshold go through the second pass (one batch), the others keep their first keypoints."""
    base = keypoints.Detector(refine=0)
    photo = cv2.imread(str(PHOTOS / "the_beatles.jpg"))
    faces = base.faces(photo)
    first = base.keypoints([photo] * len(faces), faces)
    moves = np.array([geometry.frame_move(base._first_frame(f), base._frame_on(p), base.size) for f, p in zip(faces, first)])
    if threshold == "between":  # half the faces one side of it
        threshold = float(np.sort(moves)[len(moves) // 2 - 1:len(moves) // 2 + 1].mean())
    expected = np.flatnonzero(moves > threshold)
    detector = keypoints.Detector(refine=1, refine_min_move=threshold)
    batches, predict = [], detector.predictor
    detector.predictor = lambda batch: batches.append(len(batch)) or predict(batch)
    points = detector.keypoints([photo] * len(faces), faces)
    assert batches == [len(faces)] + ([len(expected)] if len(expected) else [])
    for i in range(len(faces)):
        moved = np.abs(points[i] - first[i]).max()
        assert (moved > 1e-3) == (i in expected), (i, moves, threshold)


def test_refine_min_move_zero_is_the_old_pipeline_every_face_twice():
    detector = keypoints.Detector(refine_min_move=0.0)
    batches, predict = [], detector.predictor
    detector.predictor = lambda batch: batches.append(len(batch)) or predict(batch)
    detector(PHOTOS / "the_beatles.jpg")
    assert batches == [4, 4]


def test_the_budgets_stages_are_timed_apart_and_add_up_to_the_whole(detector):
    """No stage is timed twice or inside another: the stages sum to at most the whole, and the
    rest (the glue) is what is left of it."""
    photos = [cv2.imread(str(PHOTOS / name)) for name in ("obamas.jpg", "mona_lisa.jpg")]
    result = budget_set(detector, None, photos, repeats=1)
    stages = result["stages_ms"]
    assert {"face stage", "first frame", "crop", "network, pass 1", "map back", "re-frame", "pose"} <= set(stages) <= set(STAGES)
    assert all(v >= 0 for v in stages.values()) and result["faces"] == 3
    assert sum(stages.values()) <= result["whole_ms"]
    assert result["glue_ms"] == pytest.approx(result["whole_ms"] - sum(stages.values()))


def test_the_default_backend_runs_the_shipped_int8_copy_on_the_cpu_and_checkpoints_in_torch(detector, tiny_face_checkpoint):
    assert isinstance(detector.predictor, OnnxPredictor) and detector.module is None
    assert "QuantizeLinear" in {node.op_type for node in onnx.load(str(DEFAULT_INT8_MODEL)).graph.node}
    # `auto` is decided in one place: the shipped int8 copy on a CPU, the checkpoint in torch on a GPU
    assert resolve_backend("auto", "cpu") == ("onnxruntime", DEFAULT_INT8_MODEL)
    assert resolve_backend("auto", "cuda:0") == ("torch", DEFAULT_MODEL)
    assert resolve_backend("onnxruntime", "cpu") == ("onnxruntime", DEFAULT_ONNX_MODEL)
    assert resolve_backend("torch", "cpu") == ("torch", DEFAULT_MODEL)
    assert resolve_backend("auto", "cpu", "mine.ckpt") == ("torch", Path("mine.ckpt"))
    assert resolve_backend("auto", "cpu", "mine.onnx") == ("onnxruntime", Path("mine.onnx"))
    assert isinstance(keypoints.Detector.from_checkpoint(tiny_face_checkpoint).predictor, TorchPredictor)
    assert isinstance(keypoints.Detector(backend="torch").predictor, TorchPredictor)
    with pytest.raises(KeypointsError, match="ort_threads=0: must be null or a whole number >= 1"):
        keypoints.Detector(ort_threads=0)


def test_a_model_file_loads_by_from_file_as_by_from_checkpoint_with_the_settings_given():
    # keypoints.Detector inherits from_file from the lean Detector, whose __init__ takes its arguments in another order
    photo = cv2.imread(str(PHOTOS / "obamas.jpg"))
    by_file = keypoints.Detector.from_file(DEFAULT_INT8_MODEL, refine_min_move=0.0, ort_threads=1)
    assert isinstance(by_file.predictor, OnnxPredictor) and by_file.module is None and by_file.refine_min_move == 0.0
    by_checkpoint = keypoints.Detector.from_checkpoint(DEFAULT_INT8_MODEL, refine_min_move=0.0, ort_threads=1)
    a, b = by_file(photo), by_checkpoint(photo)
    assert len(a) == len(b) == 2 and all(np.array_equal(f.keypoints, g.keypoints) for f, g in zip(a, b))


def test_the_shipped_float_onnx_is_the_shipped_checkpoint():
    """The float copy is made from the shipped checkpoint (scripts/export.py) and gives its keypoints:
    a checkpoint shipped without re-making its copy fails here."""
    assert export.read_metadata(DEFAULT_ONNX_MODEL)["checkpoint"].startswith(DEFAULT_MODEL.name)
    # every face refined, so that no face near the threshold can take another path in the other backend
    by_onnx = keypoints.Detector(backend="onnxruntime", refine_min_move=0.0)
    by_torch = keypoints.Detector(backend="torch", refine_min_move=0.0)
    for name in ("obamas.jpg", "the_beatles.jpg"):
        faces, expected = by_onnx(PHOTOS / name), by_torch(PHOTOS / name)
        assert [f.box for f in faces] == [f.box for f in expected]
        for f, e in zip(faces, expected):
            np.testing.assert_allclose(f.keypoints, e.keypoints, atol=0.05)  # pixels: float rounding only


def test_detector_the_clis_and_the_server_share_one_default(detector):
    """keypoints.Detector()'s defaults are the ones `keypoints detect`, `serve` and `filter` compose
    (keypoints.inference.config), so a changed default reaches all of them."""
    for command in ("detect", "serve", "filter"):
        with initialize_config_module("keypoints.conf", version_base="1.3"):
            cfg = compose(command, overrides=["input=x"] if command != "serve" else [])
        settings = OmegaConf.to_object(cfg.detector)
        assert (detector.refine, detector.flip, detector.refine_min_move) == (settings.refine, settings.flip, settings.refine_min_move)
        assert detector.faces.min_score == settings.faces.min_score and detector.faces.keypoint_box == asdict(settings.faces.keypoint_box)
        assert detector.max_pixels == int(cfg.max_megapixels * 1e6)
        threads = lambda session: session.get_session_options().intra_op_num_threads  # noqa: E731
        assert cfg.ort_threads is None and threads(detector.faces.session) == threads(detector.predictor.session) == 1
        assert threads(detector._network().session) == detector.workers  # the network for a photo on its own
