"""`python -m keypoints ...`: the `keypoints` command (keypoints.commands)."""

from keypoints.commands import main

if __name__ == "__main__":
    main()
