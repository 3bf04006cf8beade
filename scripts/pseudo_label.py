"""Labels for unlabelled photos from teachers: `python scripts/pseudo_label.py images=DIR output=CSV`."""

import hydra
from omegaconf import DictConfig

from keypoints.commands.cli import friendly_errors
from keypoints.commands import hydra_script
from keypoints import teachers
from keypoints.teachers.workflow import label_folder


@hydra_script  # Hydra's own errors in one line, as the keypoints commands give them
@hydra.main(version_base="1.3", config_path="../conf", config_name="pseudo_label")
@friendly_errors(rules=(teachers.RULES,))
def main(cfg: DictConfig) -> None:
    label_folder(cfg)


if __name__ == "__main__":
    main()
