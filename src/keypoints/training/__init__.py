"""Training: the LightningModule (module.py), a run from a composed config (loop.py), losses,
callbacks, evaluation of a checkpoint, sweep summaries and run comparisons (labels for unlabelled
photos from teachers: keypoints.teachers). Inference never imports this package."""

from keypoints.training.loop import build_module, finite_or_none, instantiate_group, make_trainer, train

__all__ = ["build_module", "finite_or_none", "instantiate_group", "make_trainer", "train"]
