"""How a face stage's boxes sit on the training faces: `python scripts/measure_framing.py detector=yunet`.

Prints the `framing` and `keypoint_box` values for keypoints/inference/faces/config.py (<Name>Faces) (and the
spread of the keypoint-box guess, which face-crop training's jitter has to cover).
"""

import hydra
from omegaconf import DictConfig, OmegaConf

from keypoints.commands.cli import friendly_errors
from keypoints.commands import hydra_script
from keypoints import benchmarks
from keypoints.inference.faces import load_faces
from keypoints.benchmarks.framing import measure_framing


@hydra_script  # Hydra's own errors in one line, as the keypoints commands give them
@hydra.main(version_base="1.3", config_path="../conf", config_name="measure_framing")
@friendly_errors(rules=(benchmarks.RULES,))
def main(cfg: DictConfig) -> None:
    result = measure_framing(load_faces(cfg.detector.faces), cfg.labels, cfg.images, cfg.photos, cfg.seed)
    print(OmegaConf.to_yaml(OmegaConf.create(result)), end="")


if __name__ == "__main__":
    main()
