"""The core every wing stands on: no torch, no ONNX Runtime."""
