"""Overlays on faces: `python scripts/filter.py input=PATH output=DIR overlay=sunglasses ckpt_path=CKPT`.

The checkout's form of `keypoints filter`: the same code (keypoints/commands/filter.py) on the same
packaged config (keypoints/conf/filter.yaml).
"""

from keypoints.commands import script

main = script("filter")

if __name__ == "__main__":
    main()
