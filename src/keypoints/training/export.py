"""A trained module -> one model file that runs without the checkpoint, Lightning or Hydra.

    export(load_checkpoint("last.ckpt"), "model.onnx", "onnx")          # for ONNX Runtime
    export(load_checkpoint("last.ckpt"), "model.pt", "torchscript")     # for torch.jit.load

Both take (N, C, S, S) float32 images in [0, 1] (input "images", any N) and give (N, 68, 2)
keypoints normalised to the input (output "keypoints"; pixels = k * S/4 + S/2, geometry.normalize).
Each file carries that contract as metadata, every value a JSON string under the keys of
`metadata()`: ONNX in the model's metadata_props, TorchScript in `_extra_files`.
"""

import json
import logging
import warnings
import zipfile
from contextlib import contextmanager
from pathlib import Path

import torch
from omegaconf import OmegaConf

from keypoints.training.checkpoints import checked_targets
from keypoints.core.errors import KeypointsError
from keypoints.inference import model_files
from keypoints.inference.model_files import INPUT, METADATA_KEYS, OUTPUT, encode
from keypoints.training.models import first_conv
from torch import nn
from keypoints.core import outputs

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
# What of the checkpoint's data config inference needs: crop -> input (eval_transform), and how a
# face is framed (face-crop models: eval_frame; whole-frame models may record a `framing`).
INFERENCE_DATA_KEYS = ("eval_transform", "eval_frame", "framing")


def export(module: nn.Module, path, format: str = "onnx", checkpoint=None) -> Path:
    """Write `module` to `path` as `format` (onnx | torchscript); `checkpoint` is recorded as its source."""
    if format not in FORMATS:
        raise KeypointsError(f"format={format!r}: unknown export format (one of {', '.join(FORMATS)})")
    path = Path(path)
    module = module.eval()
    # Batch 2, not 1: torch.export specialises sizes 0 and 1, which would pin the batch size.
    example = torch.rand(2, first_conv(module).in_channels, module.hparams.input_size, module.hparams.input_size,
                         device=next(module.parameters()).device)
    with torch.no_grad():
        num_points = module(example).shape[1]
    meta = metadata(module, num_points, checkpoint)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        (_to_onnx if format == "onnx" else _to_torchscript)(module, example, path, meta)
    except OSError as e:
        raise KeypointsError(f"{path}: could not write the model ({e.strerror or e}; is output= writable?)") from None
    return path


def metadata(module: nn.Module, num_points: int = 68, checkpoint=None) -> dict:
    """What a user of the exported file needs besides the file: the input it takes, how to read its
    output, and the checkpoint's eval pipeline and framing (to make crops as in training)."""
    size = module.hparams.input_size
    data_config = module.hparams.get("data_config") or {}
    data_config = OmegaConf.to_container(data_config) if OmegaConf.is_config(data_config) else dict(data_config)
    return {
        "input_name": INPUT,
        "output_name": OUTPUT,
        "input_size": size,
        "channels": first_conv(module).in_channels,
        "num_points": int(num_points),
        # keypoints = (pixels - centre) / unit, in the S x S input's pixels (geometry.normalize)
        "keypoint_normalization": {"centre": size / 2.0, "unit": size / 4.0},
        "data_config": {k: data_config[k] for k in INFERENCE_DATA_KEYS if data_config.get(k)},
        "checkpoint": None if checkpoint is None else str(checkpoint),
        "architecture": type(module.net).__name__,
    }



def read_metadata(path) -> dict:
    """The metadata of a file written by `export`, ONNX or TorchScript."""
    path = Path(path)
    if not path.is_file():
        raise KeypointsError(f"{path}: exported model not found")
    if zipfile.is_zipfile(path):  # TorchScript archives are zip files, ONNX models protobuf
        return load_torchscript(path)[1]
    import onnx

    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    return decode(props, path)


def load_torchscript(path, device: str | torch.device = "cpu") -> tuple[torch.jit.ScriptModule, dict]:
    """A TorchScript file written by `export` -> (module, metadata)."""
    extra = dict.fromkeys(METADATA_KEYS, "")
    try:
        model = torch.jit.load(str(path), map_location=device, _extra_files=extra)
    except (RuntimeError, ValueError) as e:
        raise KeypointsError(f"{path}: not a TorchScript model ({str(e).splitlines()[0]})") from None
    return model.eval(), decode(extra, path)


def decode(props: dict, path) -> dict:
    """keypoints.inference.model_files.decode, with the data config's `_target_`s checked as a checkpoint's are."""
    return checked_targets(model_files.decode(props, path), path)


def _to_onnx(module, example, path: Path, meta: dict) -> None:
    # The dynamo exporter (torch.export -> onnxscript), torch's default since 2.9. The legacy
    # TorchScript-based one (dynamo=False) still works in 2.13 and gives the same graph and numbers
    # on these models (measured: max difference to eager 4e-5 normalised either way, same ORT speed)
    # but warns that it is deprecated; the dynamo one costs only the pure-Python onnxscript package.
    try:
        import onnxscript  # noqa: F401
    except ImportError:
        raise KeypointsError("format=onnx needs the onnx and onnxscript packages (pip install -e '.[onnx]')") from None
    with _quiet_exporter():
        program = torch.onnx.export(module, (example,), dynamo=True, verbose=False, input_names=[INPUT],
                                    output_names=[OUTPUT], dynamic_shapes=({0: torch.export.Dim("batch")},))
    program.model.metadata_props.update(encode(meta))
    with outputs.atomic_path(path) as temp:
        program.save(temp, external_data=False)  # one self-contained file (the models are far below 2 GB)


def _to_torchscript(module, example, path: Path, meta: dict) -> None:
    # torch.jit.trace cannot trace a LightningModule directly (its `trainer` property raises while
    # tracing); Lightning's to_torchscript does the same trace with that switched off. Both
    # TorchScript and to_torchscript are deprecated upstream: ONNX is the format to prefer.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*to_torchscript.*deprecated")
        if hasattr(module, "to_torchscript"):  # a training run's KeypointModule
            traced = module.to_torchscript(method="trace", example_inputs=example)
        else:  # keypoints.training.checkpoints.TrainedModel: a plain nn.Module
            traced = torch.jit.trace(module, example)
    with outputs.atomic_path(path) as temp:
        torch.jit.save(traced, str(temp), _extra_files=encode(meta))


@contextmanager
def _quiet_exporter():
    """Under Hydra's INFO logging the exporter's optimiser logs every pass it runs, and torch logs
    "torchvision is not installed" for ops these models never use: neither helps a user."""
    levels = {"torch.onnx": logging.ERROR, "onnxscript": logging.WARNING, "onnx_ir": logging.WARNING}
    saved = {name: logging.getLogger(name).level for name in levels}
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch's own pytree deprecation, not ours
            yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
