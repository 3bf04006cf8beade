"""The pictures: the visualize CLI's PNGs and the training callback's validation faces."""

from types import SimpleNamespace

import cv2
import numpy as np
import torch

from conftest import run_script
from keypoints.core import drawing
from keypoints.training import viz
from keypoints.training.callbacks import ValidationFaces
from keypoints.training.module import load_checkpoint


def has_colour(picture: np.ndarray, bgr) -> bool:
    """Some pixels close to `bgr` (the keypoint dots)."""
    return bool((np.abs(picture.astype(int) - bgr).max(axis=2) < 40).sum() > 20)


def test_visualize_writes_samples_predictions_filters_and_feature_maps(tiny_checkpoint, tiny_root, tmp_path):
    run_script("visualize.py", f"ckpt_path={tiny_checkpoint}", f"paths.data_dir={tiny_root}", f"hydra.run.dir={tmp_path}",
               "num_samples=2", "augmentations=2", "num_test=5", "tile=96")
    pictures = {p.stem: cv2.imread(str(p)) for p in tmp_path.glob("*.png")}
    assert set(pictures) == {"samples", "predictions", "conv1_filters", "conv1_feature_maps"}
    pad = 4
    assert pictures["samples"].shape == (2 * (96 + pad) + pad, 3 * (96 + pad) + pad, 3)  # 2 faces x (photo + 2 draws)
    assert pictures["predictions"].shape == (96 + 2 * pad, 5 * (96 + pad) + pad, 3)
    assert has_colour(pictures["samples"], drawing.TRUTH)
    assert has_colour(pictures["predictions"], drawing.TRUTH) and has_colour(pictures["predictions"], drawing.PREDICTION)
    assert pictures["conv1_filters"].std() > 10 and pictures["conv1_feature_maps"].std() > 10
    # NaimishNet's conv1 has 32 filters: 32 kernel tiles, and the face plus 32 maps
    assert pictures["conv1_filters"].shape[1] == 16 * (48 + pad) + pad
    assert pictures["conv1_feature_maps"].shape[0] == 3 * (96 + pad) + pad


def test_augmented_samples_move_keypoints_with_the_pixels(tiny_root):
    """A dot drawn at a keypoint lands on the same image content with or without augmentation:
    the crop the training pipeline drew is recovered from its keypoints alone."""
    from keypoints.core.annotations import read_annotations
    from keypoints.training.data.dataset import KeypointsDataset
    from keypoints.training.data.transforms import seed_train
    from keypoints.core import geometry

    names, points = read_annotations(tiny_root / "training_frames_keypoints.csv")
    dataset = KeypointsDataset(tiny_root / "training", names[:1], points[:1], seed_train(96, grayscale=False), 96)
    item = dataset[0]
    moved = geometry.denormalize(item["keypoints"], 96).numpy()
    to_input = geometry.invert(item["from_input"].numpy())
    expected = geometry.crop(dataset.images[0], to_input, 96).astype(np.float32) / 255
    seen = item["image"].numpy().transpose(1, 2, 0)
    assert np.abs(seen - expected).mean() < 0.02  # the picture is the one the affine describes
    np.testing.assert_allclose(moved, geometry.apply(to_input, points[0]), atol=1e-3)


def test_training_logs_validation_faces_each_epoch(tiny_run):
    """The tiny run logs to CSV, so the callback writes one PNG per epoch into the run folder."""
    saved = sorted(p.name for p in (tiny_run / "val_faces").glob("*.png"))
    assert saved == ["epoch000.png", "epoch001.png"]
    picture = cv2.imread(str(tiny_run / "val_faces" / "epoch001.png"))
    assert has_colour(picture, drawing.TRUTH) and has_colour(picture, drawing.PREDICTION)


def test_validation_faces_go_to_wandb_as_images(tiny_checkpoint, tmp_path, monkeypatch):
    import wandb
    from lightning.pytorch.loggers import WandbLogger

    monkeypatch.setenv("WANDB_SILENT", "true")
    module = load_checkpoint(tiny_checkpoint)
    logger = WandbLogger(project="keypoints-test", save_dir=str(tmp_path), offline=True)
    trainer = SimpleNamespace(loggers=[logger], sanity_checking=False, is_global_zero=True, current_epoch=3, global_step=7)
    batch = {"image": torch.rand(6, 1, 96, 96), "keypoints": torch.rand(6, 68, 2) - 0.5}
    try:
        ValidationFaces(dirpath=str(tmp_path / "png"), num_faces=2).on_validation_batch_end(trainer, module, None, batch, 0)
    finally:
        wandb.finish()
    media = list(tmp_path.glob("wandb/offline-run-*/files/media/images/val/faces_*.png"))
    assert len(media) == 1 and cv2.imread(str(media[0])).shape[1] == 2 * (160 + 4) + 4
    assert not (tmp_path / "png").exists()  # W&B has it; no PNG copy in the run folder
