"""The LightningModule shared by every landmark model: loss, metrics and optimisers from config.

Constructor arguments are plain config dicts saved into every checkpoint, so
`KeypointModule.load_from_checkpoint(path)` rebuilds the network (and knows the data pipeline it
was trained with, `data_config`) without Hydra or the original command line.
"""

from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.trainer.states import TrainerFn

from keypoints.core import geometry
from keypoints.training.checkpoints import checkpoint_file, moved, read_checkpoint
from keypoints.core.checks import check_value, is_number
from keypoints.core.errors import KeypointsError
from keypoints.training.metrics import LandmarkMetrics
from keypoints.training.losses import weighted_mean
from keypoints.training.models import batchnorm
from keypoints.core import outputs


# teacher_weight, with a teacher (without one it is not read)
TEACHER_SHARE = ((lambda v: is_number(v) and 0.0 < v <= 1.0), "a share in (0, 1] with a teacher")


class KeypointModule(L.LightningModule):
    def __init__(
        self,
        net: dict,
        input_size: int,
        loss: dict,
        optimizer: dict,
        scheduler: dict | None = None,
        channels_last: bool = False,
        bn_recalibration_batches: int = 0,
        data_config: dict | None = None,
        teacher_weight: float = 0.0,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.net = instantiate(net)
        if channels_last:  # faster convolutions on CPU and GPU; `.to(device)` keeps the format
            self.net = self.net.to(memory_format=torch.channels_last)
        # per coordinate, so that each point's weight can count (a teacher's labels: 0 where it may not teach)
        self.loss_fn = instantiate(moved(loss), reduction="none")
        self.metrics = torch.nn.ModuleDict({"val": LandmarkMetrics(), "test": LandmarkMetrics()})
        self._teacher: tuple = ()  # set_teacher's network, in a tuple: not a submodule, so never trained or saved

    def set_teacher(self, teacher: "KeypointModule") -> None:
        """Distillation: a trained model whose keypoints on each training crop are a second target,
        weighted `teacher_weight` against the labels'. It sees the student's crops, so it must take
        the same input (size, channels, eval pipeline)."""
        def crops(h) -> str:
            pipeline = (h.data_config or {}).get("eval_transform") or {}
            name = str(pipeline.get("_target_", "no")).rsplit(".", 1)[-1] + (" gray" if pipeline.get("grayscale") else "")
            return f"{h.input_size} px, {h.net.get('in_channels', 1)} channel(s), {name} pipeline"

        if crops(self.hparams) != crops(teacher.hparams):
            raise KeypointsError(f"teacher: it takes {crops(teacher.hparams)} crops, this model {crops(self.hparams)}: "
                                 "a teacher must see the student's crops")
        check_value("teacher_weight", self.hparams.teacher_weight, TEACHER_SHARE)
        self._teacher = (teacher.eval().requires_grad_(False),)

    def on_fit_start(self) -> None:
        if self._teacher:
            self._teacher[0].to(self.device)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, S, S) images in [0, 1] -> (B, 68, 2) keypoints normalised to the input."""
        if self.hparams.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        # float32 out, also under bf16 autocast: mapped back to photo pixels (hundreds), bf16's 8-bit
        # mantissa would round keypoints to whole pixels.
        return self.net(images).float()

    def predict_pixels(self, batch: dict) -> torch.Tensor:
        """Keypoints in the original images' pixels."""
        return geometry.to_original(self(batch["image"]), batch["from_input"], self.hparams.input_size)

    def loss(self, pred: torch.Tensor, batch: dict) -> torch.Tensor:
        """The loss of a batch's predictions, each point weighted by `batch["weights"]` (all 1 if absent)."""
        elementwise = self.loss_fn(pred.float(), batch["keypoints"].float())
        return weighted_mean(elementwise, batch.get("weights", torch.ones(elementwise.shape[:2], device=pred.device)))

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        pred = self(batch["image"])
        loss = self.loss(pred, batch)
        if self._teacher:
            with torch.no_grad():
                taught = self._teacher[0](batch["image"])
            w = self.hparams.teacher_weight
            loss = (1.0 - w) * loss + w * self.loss(pred, {"keypoints": taught})  # every point, weight 1
        if not torch.isfinite(loss):  # a run that goes on would only write NaN metrics and checkpoints
            raise KeypointsError(f"training loss is {loss.item()} at epoch {self.current_epoch}, step {self.global_step}: "
                                 "check the labels (scripts/check_data.py) or lower optimizer.lr")
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(batch["image"]))
        return loss

    def _eval_step(self, stage: str, batch: dict) -> None:
        pred = self(batch["image"])
        loss = self.loss(pred, batch)
        self.log(f"{stage}/loss", loss, on_epoch=True, sync_dist=True, batch_size=len(batch["image"]))
        pred_px = geometry.to_original(pred, batch["from_input"], self.hparams.input_size)
        self.metrics[stage].update(pred_px, batch["keypoints_px"])

    def _eval_epoch_end(self, stage: str) -> None:
        values = self.metrics[stage].compute()  # already reduced across processes: n counts every face
        for key, value in values.items():
            self.log(f"{stage}/{key}", value.float(), sync_dist=True, prog_bar=key == "nme")
        self.metrics[stage].reset()

    def on_validation_start(self) -> None:
        """Before each epoch's validation (and so before its checkpoint), re-estimate batch-norm
        statistics with dropout off; see keypoints.training.models.batchnorm for why."""
        n = self.hparams.bn_recalibration_batches
        fitting = self.trainer.state.fn == TrainerFn.FITTING  # not in trainer.validate() / test()
        if n and fitting and not self.trainer.sanity_checking and batchnorm.has_batchnorm(self.net):
            loader = self.trainer.train_dataloader
            batches = (b["image"].to(self.device) for _, b in zip(range(n), loader))
            batchnorm.recalibrate(self, batches)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step("val", batch)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step("test", batch)

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    def configure_optimizers(self):
        optimizer = instantiate(self.hparams.optimizer)(self.parameters())
        if not self.hparams.scheduler:
            return optimizer
        scheduler = instantiate(self.hparams.scheduler)(optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": "val/nme"}}


def load_checkpoint(path=None) -> KeypointModule:
    """A trained LightningModule on the CPU in eval mode, for training code (evaluate, fine-tune,
    visualise); path None: the shipped default model. Inference needs no Lightning:
    keypoints.training.checkpoints.load_model. Read as load_model reads it (keypoints.training.checkpoints.read_checkpoint):
    weights only, and a config that names only the project's own classes."""
    path = checkpoint_file(path)
    checkpoint = read_checkpoint(path)
    try:
        module = KeypointModule(**checkpoint["hyper_parameters"])
        module.load_state_dict(checkpoint["state_dict"])
    except Exception as e:  # noqa: BLE001 - argument, key and shape errors alike: not one of our checkpoints
        raise KeypointsError(f"{path}: not a keypoints checkpoint ({type(e).__name__}: {str(e).strip().splitlines()[0][:160]})") from None
    return module.eval()


def slim_checkpoint(source, target, weights_dtype: str = "float32") -> Path:
    """A checkpoint with only what inference needs (weights, hyper-parameters, where training
    stopped): no optimiser state, a third of the size; `weights_dtype="float16"` halves it again
    (loading casts the weights back: the network still computes in float32). `load_checkpoint`
    reads it like any other."""
    load_checkpoint(source)  # one clear error if it is not a keypoints checkpoint
    checkpoint = read_checkpoint(checkpoint_file(source))  # hyper-parameters as plain dicts: torch's weights-only default reads them
    keep = ("state_dict", "hyper_parameters", "pytorch-lightning_version", "epoch", "global_step")
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    slim = {k: checkpoint[k] for k in keep if k in checkpoint}
    dtype = getattr(torch, weights_dtype)
    slim["state_dict"] = {k: v.to(dtype) if v.is_floating_point() else v for k, v in slim["state_dict"].items()}
    with outputs.atomic_path(target) as temp:
        torch.save(slim, temp)
    return target
