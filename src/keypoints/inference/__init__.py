"""The inference wing: a photo -> faces -> 68 keypoints, on NumPy, OpenCV and ONNX Runtime alone.

Nothing here imports torch, Lightning or albumentations (pyproject's import-linter contracts): the
lean install (`pip install keypoints`) runs the shipped model's ONNX files with it. A checkpoint of
one's own, and exporting, need the `train` extra; keypoints.detect reaches them only then.
"""
