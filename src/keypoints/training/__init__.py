"""Training: the LightningModule (module.py), a run from a composed config (loop.py), losses,
callbacks, evaluation of a checkpoint, sweep summaries and run comparisons (labels for unlabelled
photos from teachers: keypoints.teachers). Inference never imports this package, and importing it
loads nothing: its modules import Lightning themselves, so a checkpoint naming its loss
(training/losses.py) is checked without loading Lightning."""
