"""What a Hydra multirun job needs to know about its sweep: its W&B group and tags, and DDP safety."""

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.fabric.plugins.environments import SLURMEnvironment
from omegaconf import DictConfig, open_dict

from keypoints.core.errors import KeypointsError

MAX_TAG = 64  # W&B's limit on a tag's length


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def prepare(cfg: DictConfig) -> None:
    """In a sweep: one W&B group per sweep and the job's overrides as tags; refuse what would hang."""
    if not in_multirun():
        return
    hydra_cfg = HydraConfig.get()
    wandb = (cfg.get("logger") or {}).get("wandb")
    with open_dict(cfg):
        if wandb is not None:
            wandb.group = wandb.group or Path(hydra_cfg.sweep.dir).name
            wandb.tags = list(wandb.tags or []) + [o[:MAX_TAG] for o in hydra_cfg.overrides.task]
    # Lightning's DDP launcher re-runs the command line in a subprocess, which under a multirun
    # starts the whole sweep again (Lightning issue 11300); ddp_spawn runs, but its test metrics
    # came out double-counted here. Under SLURM (submitit launcher) the cluster starts one task per
    # device and Lightning launches nothing, so that path is safe.
    several = str(cfg.trainer.devices) not in ("1", "auto") or cfg.trainer.num_nodes > 1
    if several and not SLURMEnvironment.detect():
        raise KeypointsError(
            f"multirun with trainer.devices={cfg.trainer.devices} is not supported (Lightning issue 11300): run the "
            "jobs one by one without -m, or sweep on a cluster with hydra/launcher=slurm"
        )

