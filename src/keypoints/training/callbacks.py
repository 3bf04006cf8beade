"""Lightning callbacks of the training framework."""

import logging
import time
from pathlib import Path

import cv2
import lightning as L
import torch
from lightning.pytorch.loggers import WandbLogger

from keypoints.training import viz
from keypoints.core.outputs import write_image

log = logging.getLogger(__name__)


class EpochSummary(L.Callback):
    """One plain log line per epoch (epoch, seconds, train loss, val metrics): readable in a
    `nohup ... > log` file and in Hydra's train.log, where a progress bar leaves nothing useful."""

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero or not hasattr(self, "start"):
            return
        m = trainer.callback_metrics
        parts = [f"{key}={m[key].item():.4f}" for key in ("train/loss_epoch", "val/loss", "val/nme", "val/fr10")
                 if key in m]
        log.info(f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs} "
                 f"{time.perf_counter() - self.start:.0f}s " + " ".join(parts))


class InterruptCheckpoint(L.Callback):
    """On Ctrl-C or SIGTERM (loop.py turns it into Ctrl-C) save the run as it stands, named for
    what it is: `interrupted-epochNNN-stepN.ckpt`, never a best-score name. Lightning then exits
    with a non-zero code, so `make train` and job schedulers see an unfinished run."""

    def __init__(self, dirpath: str):
        self.dirpath = Path(dirpath)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if isinstance(exception, KeyboardInterrupt) and trainer.state.fn == "fit":
            path = self.dirpath / f"interrupted-epoch{trainer.current_epoch:03d}-step{trainer.global_step}.ckpt"
            trainer.save_checkpoint(path)
            log.warning(f"interrupted: saved {path}; resume with resume_from={path}")


class ValidationFaces(L.Callback):
    """Each validation epoch, a row of the first `num_faces` validation inputs with ground truth
    (green) and predictions (red): logged to W&B as `val/faces`, else written to
    `dirpath/epoch<NNN>.png`. One small forward pass on the first batch: cheap."""

    def __init__(self, dirpath: str, num_faces: int = 4, tile: int = 160):
        self.dirpath, self.num_faces, self.tile = Path(dirpath), num_faces, tile

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if batch_idx != 0 or dataloader_idx != 0 or trainer.sanity_checking or not trainer.is_global_zero:
            return
        images = batch["image"][: self.num_faces]
        with torch.no_grad():
            pred = pl_module(images)
        picture = viz.input_faces(images, batch["keypoints"][: self.num_faces], pred,
                                  pl_module.hparams.input_size, self.tile)
        wandb = [logger for logger in trainer.loggers if isinstance(logger, WandbLogger)]
        for logger in wandb:
            logger.log_image(key="val/faces", images=[cv2.cvtColor(picture, cv2.COLOR_BGR2RGB)],
                             caption=[f"epoch {trainer.current_epoch}"], step=trainer.global_step)
        if not wandb:
            self.dirpath.mkdir(parents=True, exist_ok=True)
            write_image(self.dirpath / f"epoch{trainer.current_epoch:03d}.png", picture)
