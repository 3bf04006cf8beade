from keypoints.data.datamodule import KeypointsDataModule
from keypoints.data.dataset import KeypointsDataset, read_annotations

__all__ = ["KeypointsDataModule", "KeypointsDataset", "read_annotations"]
