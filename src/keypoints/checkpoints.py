"""Trained models as inference needs them, without Lightning: the shipped default's files, and
`load_model`, which rebuilds a checkpoint's network from the hyper-parameters saved in it.

Training code (keypoints.training.module.load_checkpoint) gets the full LightningModule back; inference only
needs the network and what the checkpoint says about its input, and importing Lightning would cost
every detect.py call seconds before its first photo.
"""

import json
from pathlib import Path

import torch
from hydra.utils import instantiate
from torch import nn

from keypoints.errors import KeypointsError

# The model shipped inside the package (conf/experiment/face_resnet*.yaml; docs/MODEL_CARD.md).
DEFAULT_MODEL = Path(__file__).parent / "weights" / "face_resnet.ckpt"
# The same model quantized to int8 for ONNX Runtime (scripts/export.py quantize=int8; backend=onnxruntime-int8).
DEFAULT_INT8_MODEL = DEFAULT_MODEL.with_suffix(".int8.onnx")
# Its float copy for ONNX Runtime (scripts/export.py), which the default backend ("auto") runs on the CPU.
DEFAULT_ONNX_MODEL = DEFAULT_MODEL.with_suffix(".onnx")


class Hyperparameters(dict):
    """A checkpoint's hyper-parameters, read as `hparams.input_size` or `hparams.get("data_config")`
    (the two ways a LightningModule's hparams are read)."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


class TrainedModel(nn.Module):
    """A checkpoint's network and hyper-parameters; called like KeypointModule: (B, C, S, S)
    images in [0, 1] -> (B, 68, 2) float32 keypoints normalised to the input."""

    def __init__(self, hparams: dict, net: nn.Module):
        super().__init__()
        self.hparams, self.net = Hyperparameters(hparams), net

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.hparams.get("channels_last"):
            images = images.contiguous(memory_format=torch.channels_last)
        return self.net(images).float()


def run_checkpoint(path) -> Path:
    """A .ckpt file as given, or a training run's folder, meaning its best checkpoint (metrics.json's
    best_ckpt; an interrupted run: checkpoints/last.ckpt). How `make train` hands one stage to the next."""
    path = Path(path)
    if not path.is_dir():
        return path
    metrics = path / "metrics.json"
    best = json.loads(metrics.read_text()).get("best_ckpt") if metrics.is_file() else None
    for candidate in (best, path / "checkpoints" / "last.ckpt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise KeypointsError(f"{path}: a run folder without checkpoints (no best_ckpt in metrics.json, no "
                         "checkpoints/last.ckpt; fast_dev_run saves none)")


def checkpoint_file(path=None) -> Path:
    """`path` as a checkpoint file that exists (a run folder: its best; None: the shipped default
    model), or one clear error."""
    path = run_checkpoint(path) if path is not None else DEFAULT_MODEL
    if not path.is_file():
        hint = "ckpt_path=..." if path != DEFAULT_MODEL else "this install has no default model; pass ckpt_path=..."
        raise KeypointsError(f"{path}: checkpoint not found ({hint})")
    return path


def load_model(path=None) -> TrainedModel:
    """A checkpoint from scripts/train.py (path None: the shipped default model) on the CPU in eval
    mode; a wrong path or file is one clear error."""
    path = checkpoint_file(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        hparams = dict(checkpoint["hyper_parameters"])
        net = instantiate(hparams["net"])
        prefix = "net."
        net.load_state_dict({k[len(prefix):]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)})
    except Exception as e:  # noqa: BLE001 - pickle, zip, key and shape errors alike: not one of our checkpoints
        raise KeypointsError(f"{path}: not a keypoints checkpoint ({type(e).__name__}: {str(e).splitlines()[0][:160]})") from None
    model = TrainedModel(hparams, net)
    if hparams.get("channels_last"):
        model.net = model.net.to(memory_format=torch.channels_last)
    return model.eval()
