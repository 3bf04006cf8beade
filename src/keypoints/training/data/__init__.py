"""Data: the training Dataset (dataset.py; the CSV layout and reader: keypoints.core.annotations), face
framing, albumentations pipelines. No Lightning here: the LightningDataModule is keypoints.training.datamodule."""

from keypoints.training.data.dataset import KeypointsDataset

__all__ = ["KeypointsDataset"]
