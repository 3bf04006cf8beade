"""Faces and 68 keypoints: `python scripts/detect.py input=PATH output=DIR ckpt_path=CKPT`.

The checkout's form of `keypoints detect`: the same code (keypoints/commands/detect.py) on the same
packaged config (keypoints/conf/detect.yaml).
"""

from keypoints.commands import script

main = script("detect")

if __name__ == "__main__":
    main()
