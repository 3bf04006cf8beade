"""The web demo and REST API: `keypoints serve [port=8000] [host=127.0.0.1]`, then open the printed address."""

import hydra
from omegaconf import DictConfig

from keypoints.commands.cli import friendly_errors
from keypoints import web
from keypoints.inference.video import RULES as VIDEO_RULES
from keypoints.core.errors import KeypointsError

try:  # the `web` extra (FastAPI, uvicorn) is optional: without it this command says so, the others work
    from keypoints.web.app import serve
except ImportError as e:
    serve, MISSING = None, e.name


@hydra.main(version_base="1.3", config_path="pkg://keypoints.conf", config_name="serve")
@friendly_errors(rules=(web.RULES, VIDEO_RULES))
def main(cfg: DictConfig) -> None:
    if serve is None:
        raise KeypointsError(f"the web demo needs its extra ({MISSING} is missing): pip install 'keypoints[web]' "
                             "(a checkout: pip install -e '.[web]')")
    serve(cfg)
