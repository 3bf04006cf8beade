"""The web demo and REST API: `python scripts/serve.py [port=8000] [host=127.0.0.1]`, then open the printed address."""

import hydra
from omegaconf import DictConfig

from keypoints.cli import friendly_errors
from keypoints.errors import KeypointsError


@hydra.main(version_base="1.3", config_path="../conf", config_name="serve")
@friendly_errors
def main(cfg: DictConfig) -> None:
    try:
        from keypoints.web.app import serve
    except ImportError as e:
        raise KeypointsError(f"the web demo needs its extra ({e.name} is missing): pip install -e '.[web]'") from None
    serve(cfg)


if __name__ == "__main__":
    main()
