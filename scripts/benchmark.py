"""End-to-end accuracy side by side: `python scripts/benchmark.py ckpt_paths=[...]` or `labels=<csv> images=<folder>`.

The checkout's form of `keypoints benchmark`: the same code (keypoints/commands/benchmark.py) on the same
packaged config (keypoints/conf/benchmark.yaml).
"""

from keypoints.commands import script

main = script("benchmark")

if __name__ == "__main__":
    main()
