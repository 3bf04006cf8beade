"""The web demo and REST API: `python scripts/serve.py [port=8000] [host=127.0.0.1]`.

The checkout's form of `keypoints serve`: the same code (keypoints/commands/serve.py) on the same
packaged config (keypoints/conf/serve.yaml).
"""

from keypoints.commands import script

main = script("serve")

if __name__ == "__main__":
    main()
