"""Jitter, lag and speed of the video pipeline: `python scripts/benchmark_video.py [video.detect_every=3]`.

Prints a markdown table and writes it to benchmark_video.md, the figures to benchmark_video.json
(see keypoints.benchmarks.video).
"""


import hydra
from omegaconf import DictConfig

from keypoints.benchmarks import video as benchmark
from keypoints.commands.cli import friendly_errors
from keypoints.commands import hydra_script
from keypoints import benchmarks
from keypoints.inference.video import RULES as VIDEO_RULES
from keypoints.detect import load_detector
from keypoints.inference.video import torch_threads, video_config
from keypoints.core import outputs


@hydra_script  # Hydra's own errors in one line, as the keypoints commands give them
@hydra.main(version_base="1.3", config_path="../conf", config_name="benchmark_video")
@friendly_errors(rules=(benchmarks.RULES, VIDEO_RULES))
def main(cfg: DictConfig) -> None:
    knobs = video_config(**cfg.video)
    knobs.pop("max_frames")
    with torch_threads(knobs.pop("threads")):  # as the runner runs a video
        result = benchmark.measure(cfg, load_detector(cfg, cfg.ckpt_path), knobs)
    table = benchmark.markdown(result, cfg)
    print(table, end="")
    outputs.write_text(cfg.table_file, table)
    outputs.write_json(cfg.json_file, result, indent=2, allow_nan=True)


if __name__ == "__main__":
    main()
