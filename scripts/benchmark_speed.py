"""Inference speed: `python scripts/benchmark_speed.py` (parts=[budget] or parts=[backends] for one of them).

budget: the default pipeline's time per stage on three kinds of photos, against dlib's whole time in
the same run (keypoints.benchmarks.budget) -> budget.md, budget.json. backends: every checkpoint under
every backend, the face stage alone and dlib (keypoints.benchmarks.speed) -> speed.md, speed.json.
Each prints its markdown table.
"""

import json
from pathlib import Path

import hydra
from omegaconf import DictConfig

from keypoints.benchmarks import budget, speed
from keypoints.commands.cli import friendly_errors
from keypoints.commands import hydra_script
from keypoints import benchmarks
from keypoints.core.errors import KeypointsError
from keypoints.core import outputs


@hydra_script  # Hydra's own errors in one line, as the keypoints commands give them
@hydra.main(version_base="1.3", config_path="../conf", config_name="benchmark_speed")
@friendly_errors(rules=(benchmarks.RULES,))
def main(cfg: DictConfig) -> None:
    unknown = set(cfg.parts) - {"budget", "backends"}
    if unknown:
        raise KeypointsError(f"parts={list(cfg.parts)}: unknown part {sorted(unknown)[0]!r} (budget, backends)")
    out = Path(cfg.paths.output_dir)
    if "budget" in cfg.parts:
        result = budget.measure(cfg)
        table = budget.markdown(result)
        print(table, end="")
        outputs.write_text(out / "budget.md", table)
        outputs.write_json(out / "budget.json", result, indent=2, allow_nan=True)
    if "backends" in cfg.parts:
        result = speed.measure(cfg)
        table = speed.markdown(result)
        print(table, end="")
        outputs.write_text(cfg.table_file, table)
        outputs.write_json(cfg.json_file, result, indent=2, allow_nan=True)


if __name__ == "__main__":
    main()
