"""The model files the package ships, and what an exported model file says about itself.

An exported file (keypoints.training.export) carries, as JSON strings under METADATA_KEYS, what running it
needs besides the file: its input size and channels, how to read its output, and the checkpoint's
eval pipeline and framing (read by keypoints.inference.pipeline, never instantiated by name).
"""

import json
from pathlib import Path

from keypoints.core.errors import KeypointsError

WEIGHTS = Path(__file__).parent.parent / "weights"
# The model shipped inside the package (docs/MODEL_CARD.md): its checkpoint (torch, the `train` extra) ...
DEFAULT_MODEL = WEIGHTS / "face_mobile.ckpt"
# ... its int8 copy for ONNX Runtime, what the default backend ("auto") runs on the CPU ...
DEFAULT_INT8_MODEL = DEFAULT_MODEL.with_suffix(".int8.onnx")
# ... and its float copy (backend=onnxruntime).
DEFAULT_ONNX_MODEL = DEFAULT_MODEL.with_suffix(".onnx")

INPUT, OUTPUT = "images", "keypoints"
METADATA_KEYS = ("input_name", "output_name", "input_size", "channels", "num_points", "keypoint_normalization",
                 "data_config", "checkpoint", "architecture")


def encode(meta: dict) -> dict[str, str]:
    return {key: json.dumps(meta[key]) for key in METADATA_KEYS}


def decode(props: dict, path) -> dict:
    """A model file's metadata strings -> values; missing or malformed metadata is one line."""
    missing = [key for key in METADATA_KEYS if not props.get(key)]
    if missing:
        raise KeypointsError(f"{path}: no keypoints metadata ({', '.join(missing)}); export it with `keypoints export`")
    try:
        meta = {key: json.loads(props[key]) for key in METADATA_KEYS}
    except json.JSONDecodeError as e:
        raise KeypointsError(f"{path}: keypoints metadata that is not JSON ({e.msg})") from None
    if not isinstance(meta["input_size"], int) or not 16 <= meta["input_size"] <= 1024 or meta["channels"] not in (1, 3) \
            or meta["num_points"] != 68 or not isinstance(meta["data_config"], dict):
        raise KeypointsError(f"{path}: keypoints metadata out of range (input_size {meta['input_size']!r}, channels "
                             f"{meta['channels']!r}, num_points {meta['num_points']!r}); export it with `keypoints export`")
    return meta
