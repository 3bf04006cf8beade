"""Inference speed per checkpoint and backend, Haar alone and dlib: `python scripts/benchmark_speed.py ckpt_paths=[a.ckpt,b.ckpt]`.

Prints a markdown table and writes it to speed.md, the figures to speed.json (see keypoints.benchmarks.speed).
"""

import json
from pathlib import Path

import hydra
from omegaconf import DictConfig

from keypoints.benchmarks import speed
from keypoints.cli import friendly_errors


@hydra.main(version_base="1.3", config_path="../conf", config_name="benchmark_speed")
@friendly_errors
def main(cfg: DictConfig) -> None:
    result = speed.measure(cfg)
    table = speed.markdown(result)
    print(table, end="")
    Path(cfg.table_file).write_text(table)
    Path(cfg.json_file).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
