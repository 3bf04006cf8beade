"""Data: the Udacity CSV layout and reader (dataset.py), face framing, albumentations pipelines.
No Lightning here: the LightningDataModule is keypoints.training.datamodule."""

from keypoints.data.dataset import SPLITS, KeypointsDataset, read_annotations

__all__ = ["SPLITS", "KeypointsDataset", "read_annotations"]
