"""Trained models as inference needs them, without Lightning: the shipped default's files, and
`load_model`, which rebuilds a checkpoint's network from the hyper-parameters saved in it.

Training code (keypoints.training.module.load_checkpoint) gets the full LightningModule back; inference only
needs the network and what the checkpoint says about its input, and importing Lightning would cost
every detect.py call seconds before its first photo.

A checkpoint is a file from outside, so reading one never runs code (`read_checkpoint`): its pickle
is unpacked weights-only (tensors, plain containers and the few classes of SAFE_GLOBALS), and the
`_target_`s of its config may name only the project's own models, losses and data pipeline
(TARGETS), checked before anything they name is imported.
"""

import collections
import inspect
import json
import pathlib
import pickle
import re
import typing
import warnings
from pathlib import Path

import numpy as np
import torch
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.base import ContainerMetadata, Metadata
from omegaconf.nodes import AnyNode
from torch import nn

from keypoints.core.errors import KeypointsError
from keypoints.core.io import not_a_file
from keypoints.inference.model_files import DEFAULT_MODEL

# The shipped model's files (docs/MODEL_CARD.md) are named in the inference wing, which runs them without torch.


class Hyperparameters(dict):
    """A checkpoint's hyper-parameters, read as `hparams.input_size` or `hparams.get("data_config")`
    (the two ways a LightningModule's hparams are read)."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


# Modules that moved since checkpoints were written: their hyper-parameters' `_target_` strings
# name the old place (checkpoints before the training/ package say keypoints.losses.WingLoss).
MOVED = {"keypoints.losses.": "keypoints.training.losses.",
         # the LightningDataModule left keypoints.data (which no longer loads Lightning) for training/
         "keypoints.data.KeypointsDataModule": "keypoints.training.datamodule.KeypointsDataModule",
         "keypoints.data.datamodule.": "keypoints.training.datamodule.",
         # face framing moved to the inference wing, which training shares
         "keypoints.data.framing.": "keypoints.inference.framing.",
         # the torch side became the training wing (2026-12-07): its data pipeline and networks
         "keypoints.data.": "keypoints.training.data.",
         "keypoints.models.": "keypoints.training.models."}

# What a checkpoint's pickle may hold beyond tensors and plain containers (torch's weights-only
# default): what Lightning and OmegaConf put into checkpoints written by older versions of this
# project or by users' own runs (hyper-parameters as AttributeDict or DictConfig, paths, numpy
# scalars in callbacks' state). Lightning's AttributeDict is read as a plain dict (what it is, with
# attribute access), so reading a checkpoint does not import Lightning; numpy's helpers under both
# the names numpy 1 (numpy.core) and numpy 2 (numpy._core) pickle them with.
NUMPY_CORE = getattr(np, "_core", None) or np.core
SAFE_GLOBALS = [
    (dict, "lightning.fabric.utilities.data.AttributeDict"),
    (dict, "pytorch_lightning.utilities.parsing.AttributeDict"),
    DictConfig, ListConfig, ContainerMetadata, Metadata, AnyNode, typing.Any,
    dict, list, tuple, set, int, float, str, bool, collections.OrderedDict, collections.defaultdict,
    pathlib.Path, pathlib.PosixPath, pathlib.WindowsPath, pathlib.PurePosixPath, pathlib.PureWindowsPath,
    np.dtype, np.ndarray, *((getattr(NUMPY_CORE.multiarray, name), f"numpy.{core}.multiarray.{name}")
                            for name in ("scalar", "_reconstruct") for core in ("core", "_core")),
    *(type(np.dtype(t)) for t in ("bool", "int32", "int64", "uint8", "float16", "float32", "float64")),
]

# The only callables a checkpoint's config may name, by where they are defined, and what they must
# be: the project's networks, losses and data pipeline, torch's losses, optimisers and schedules.
TARGETS = {
    "keypoints.training.models.": nn.Module,
    "keypoints.training.losses.": nn.Module,
    "keypoints.training.data.": None,  # the transforms (the data module: NAMED_TARGETS) (classes and functions)
    "keypoints.inference.framing.": None,  # the face frame
    "torch.nn.": nn.modules.loss._Loss,
    "torch.optim.": (torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau),
}


def moved(config: dict) -> dict:
    """`config` with a `_target_` in a module that has since moved pointed at its new place."""
    target = config.get("_target_", "")
    for old, new in MOVED.items():
        if target.startswith(old):
            return {**config, "_target_": new + target[len(old):]}
    return config


def read_checkpoint(path) -> dict:
    """A checkpoint file's contents, its `hyper_parameters` as plain dicts with every `_target_` checked
    (and moved, as MOVED says), without running any code the file names: a pickle that needs
    anything beyond SAFE_GLOBALS, or a config naming a callable outside TARGETS, is one line
    naming it."""
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch's note on a pickle protocol it did not write: the error below says it all
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL (\S+)", str(e))
        if found:
            raise KeypointsError(f"{path}: refused: its pickle calls {found.group(1)}, which a keypoints checkpoint "
                                 "never holds (it could run code; only weights are read)") from None
        raise KeypointsError(f"{path}: not a keypoints checkpoint ({_first_line(e)})") from None
    except Exception as e:  # noqa: BLE001 - zip, storage and EOF errors alike: not one of our checkpoints
        raise KeypointsError(f"{path}: not a keypoints checkpoint ({type(e).__name__}: {_first_line(e)})") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict) \
            or not isinstance(checkpoint.get("hyper_parameters"), (dict, DictConfig)):
        raise KeypointsError(f"{path}: not a keypoints checkpoint (no state_dict and hyper_parameters)")
    try:
        hparams = _plain(checkpoint["hyper_parameters"])
    except Exception as e:  # noqa: BLE001 - an OmegaConf interpolation that does not resolve
        raise KeypointsError(f"{path}: not a keypoints checkpoint (hyper_parameters: {_first_line(e)})") from None
    checkpoint["hyper_parameters"] = checked_targets(hparams, path)
    return checkpoint


# Targets allowed by name alone, never imported to check them: the training data module a checkpoint
# records (its data config), which inference never builds and which would load Lightning.
NAMED_TARGETS = {"keypoints.training.datamodule.KeypointsDataModule"}


def checked_targets(config, path):
    """`config` with every `_target_` moved (MOVED) and checked against TARGETS before anything it
    names is imported; one outside them is one line naming it."""
    if isinstance(config, list):
        return [checked_targets(v, path) for v in config]
    if not isinstance(config, dict):
        return config
    config = {k: checked_targets(v, path) for k, v in moved(config).items()}
    target = config.get("_target_")
    if target is None or target in NAMED_TARGETS:
        return config
    prefix = next((p for p in TARGETS if isinstance(target, str) and target.startswith(p)), None)
    refused = KeypointsError(f"{path}: refused: its config names _target_={str(target)[:120]!r}, which is none of "
                             "the project's models, losses and data pipeline nor torch's losses, optimisers and schedules")
    if prefix is None:
        raise refused
    try:
        found = get_object(target)
    except Exception:  # noqa: BLE001 - ImportError and friends: a name that is not there
        raise KeypointsError(f"{path}: its config names _target_={target!r}, which this version of keypoints does not have") from None
    base = TARGETS[prefix]
    own = (inspect.isclass(found) or inspect.isfunction(found)) and found.__module__.startswith(prefix.rstrip("."))
    if not own or (base is not None and not (inspect.isclass(found) and issubclass(found, base))):
        raise refused
    return config


def _plain(value):
    """Containers as plain dicts and lists (DictConfig, Hyperparameters, OrderedDict, tuples): what
    instantiate and JSON take."""
    if isinstance(value, (DictConfig, ListConfig)):
        value = OmegaConf.to_container(value, resolve=True)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _first_line(error: Exception) -> str:
    """The part of `error` that says what is wrong: torch's weights-only refusal opens with a paragraph
    on its defaults and puts the reason ("Unsupported operand 149") after "WeightsUnpickler error:"."""
    text = str(error)
    if "WeightsUnpickler error:" in text:
        reason = " ".join(text.split("WeightsUnpickler error:", 1)[1].split("Check the documentation", 1)[0].split())
        return f"weights-only unpickler: {reason}"[:160]
    return (text.strip().splitlines() or [""])[0][:160]


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
    best = None
    if metrics.is_file():
        try:
            best = json.loads(metrics.read_text()).get("best_ckpt")
        except (ValueError, AttributeError, OSError) as e:  # cut short, not JSON, or not an object
            raise KeypointsError(f"{metrics}: not a metrics file ({type(e).__name__}: {str(e)[:80]}); "
                                 "give the checkpoint itself, ckpt_path=<run>/checkpoints/<file>.ckpt") from None
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
        kind = not_a_file(path)  # a FIFO or a device exists, but is no checkpoint (and reading it could block)
        what = "checkpoint not found" if kind in (None, "not found") else f"{kind}, not a checkpoint file"
        raise KeypointsError(f"{path}: {what} ({hint})")
    return path


def load_model(path=None) -> TrainedModel:
    """A checkpoint from scripts/train.py (path None: the shipped default model) on the CPU in eval
    mode; a wrong path or file is one clear error."""
    path = checkpoint_file(path)
    checkpoint = read_checkpoint(path)
    hparams = checkpoint["hyper_parameters"]
    try:
        net = instantiate(hparams["net"])
        prefix = "net."
        net.load_state_dict({k[len(prefix):]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)})
    except Exception as e:  # noqa: BLE001 - key and shape errors alike: not one of our checkpoints
        raise KeypointsError(f"{path}: not a keypoints checkpoint ({type(e).__name__}: {_first_line(e)})") from None
    model = TrainedModel(hparams, net)
    if hparams.get("channels_last"):
        model.net = model.net.to(memory_format=torch.channels_last)
    return model.eval()
