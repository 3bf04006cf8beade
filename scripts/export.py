"""A checkpoint as one ONNX or TorchScript file: `python scripts/export.py ckpt_path=CKPT [format=torchscript]`.

The checkout's form of `keypoints export`: the same code (keypoints/commands/export.py) on the same
packaged config (keypoints/conf/export.yaml).
"""

from keypoints.commands import script

main = script("export")

if __name__ == "__main__":
    main()
