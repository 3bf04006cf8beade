"""A bounded load test of the web demo on loopback: `python scripts/load_test.py [requests=200] [concurrency=8]`."""

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from keypoints.commands.cli import friendly_errors
from keypoints.commands import hydra_script
from keypoints.web import LOAD_TEST_RULES


@hydra_script  # Hydra's own errors in one line, as the keypoints commands give them
@hydra.main(version_base="1.3", config_path="../conf", config_name="load_test")
@friendly_errors(rules=(LOAD_TEST_RULES,))
def main(cfg: DictConfig) -> None:
    from keypoints.web.load import load_test

    load_test(cfg, Path(__file__).with_name("serve.py"), Path(HydraConfig.get().runtime.output_dir))


if __name__ == "__main__":
    main()
