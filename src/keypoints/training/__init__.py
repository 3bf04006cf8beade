"""Training: the LightningModule (module.py), a run from a composed config (loop.py), losses,
callbacks, evaluation of a checkpoint, sweep summaries and run comparisons (labels for unlabelled
photos from teachers: keypoints.teachers). Inference never imports this package, and importing it
loads nothing: its modules import Lightning themselves, so a checkpoint naming its loss
(training/losses.py) is checked without loading Lightning."""

from numbers import Number

from keypoints.core.checks import number, optional, whole
from keypoints.inference.cpu import cpu_has_bf16

RULES = {  # conf/train.yaml and the configs built on it (evaluate, benchmark_train, ...)
    "data.batch_size": whole(1),
    "data.eval_batch_size": whole(1),
    "data.num_workers": whole(0),
    "data.val_fraction": ((lambda v: isinstance(v, Number) and 0 < v < 1), "a share between 0 and 1"),
    "optimizer.lr": number(0.0),  # 0 keeps the weights as they are (a test of init_from does)
    "optimizer.weight_decay": number(0.0),
    "trainer.max_epochs": whole(-1),
    "trainer.devices": ((lambda v: v == "auto" or (isinstance(v, int) and v >= -1) or isinstance(v, (list, str))), "auto, -1 or a count"),
    "seed": optional(whole(0)),
    # a share, or (alexnet, naimish) one share a layer group: a word here would fail deep inside the model's constructor
    "model.dropout": ((lambda v: _share(v) or (isinstance(v, list) and len(v) > 0 and all(map(_share, v)))),
                      "a share from 0 to 1 (below 1), or a list of them"),
}


def _share(v) -> bool:
    return isinstance(v, Number) and not isinstance(v, bool) and 0 <= v < 1


def fast_precision() -> str:
    """`trainer.precision: ${fast_precision:}` (conf/experiment/*): bf16-mixed where it is the faster (a GPU,
    or a CPU with AVX512-BF16 or AMX), 32-true elsewhere (bf16 emulated on an AVX2-only CPU: 14x slower)."""
    import torch

    return "bf16-mixed" if torch.cuda.is_available() or cpu_has_bf16() else "32-true"
