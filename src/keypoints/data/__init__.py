"""Data: the Udacity CSV layout (dataset.py), face framing, albumentations pipelines, and the
LightningDataModule (datamodule.py, imported on first use: inference needs no Lightning)."""

from keypoints.data.dataset import KeypointsDataset, read_annotations

__all__ = ["KeypointsDataModule", "KeypointsDataset", "read_annotations"]


def __getattr__(name: str):
    if name == "KeypointsDataModule":
        from keypoints.data.datamodule import KeypointsDataModule

        return KeypointsDataModule
    raise AttributeError(f"module 'keypoints.data' has no attribute {name!r}")
