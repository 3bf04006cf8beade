"""Train / val / test splits of the Udacity facial keypoints data as a LightningDataModule (the data
layout itself, SPLITS and the CSV reader, is keypoints.training.data: no Lightning)."""

from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import ConcatDataset, DataLoader, WeightedRandomSampler

from keypoints.core.annotations import SPLITS, read_annotations
from keypoints.training.data.dataset import KeypointsDataset
from keypoints.inference.framing import FaceFrame
from keypoints.core.errors import KeypointsError

def seed_augmentation(worker_id: int | None = None) -> None:
    """albumentations draws from its own generator, untouched by `seed=`; derive it from torch's
    seed so runs repeat, and so that each DataLoader worker augments differently."""
    info = torch.utils.data.get_worker_info()
    if info is not None:
        _seed(info.dataset, torch.initial_seed() % 2**32)


def _seed(dataset: KeypointsDataset | ConcatDataset, seed: int) -> None:
    if isinstance(dataset, ConcatDataset):  # the training split with extra sources
        for i, part in enumerate(dataset.datasets):
            _seed(part, seed + 2 * i)
        return
    dataset.transform.set_random_seed(seed)
    if dataset.frame is not None:
        dataset.frame.set_random_seed(seed + 1)


class KeypointsDataModule(L.LightningDataModule):
    """Val is a seeded slice of the training CSV; the test CSV is never used for model selection."""

    def __init__(
        self,
        root: str,
        input_size: int,
        train_transform,
        eval_transform,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        batch_size: int = 32,
        eval_batch_size: int = 64,
        num_workers: int = 0,
        train_frame: FaceFrame | None = None,
        eval_frame: FaceFrame | None = None,
        sources: dict | None = None,
        train_weight: float = 1.0,
        epoch_size: int | None = None,
        splits: dict | None = None,
    ):
        """`train_frame` / `eval_frame`: face-framed crops (keypoints.inference.framing); None: whole frames.
        `sources`: more training faces, by name: {labels: CSV, images: folder, weight, min_confidence,
        by_confidence, point_weights (the CSV's per-point weights in the loss; false: every point 1), train_frame, train_transform} (pseudo-labelled photos, say; None frame or
        transform: the main ones). Each batch then draws from the labelled training split with
        probability `train_weight` and from each source with its `weight` (normalised), `epoch_size`
        faces an epoch (None: all faces of all sources); validation and test stay the data set's.
        `splits`: split -> [image folder, CSV] under `root` (None: the Udacity download's layout,
        keypoints.core.annotations.SPLITS; 300-W's is {train: [train, train_keypoints.csv], test: [dev, dev_keypoints.csv]})."""
        super().__init__()
        if not 0.0 < val_fraction < 1.0:
            raise KeypointsError(f"data.val_fraction must be between 0 and 1, got {val_fraction}")
        self.root = Path(root)
        self.input_size, self.train_transform, self.eval_transform = input_size, train_transform, eval_transform
        self.val_fraction, self.split_seed = val_fraction, split_seed
        self.batch_size, self.eval_batch_size, self.num_workers = batch_size, eval_batch_size, num_workers
        self.train_frame, self.eval_frame = train_frame, eval_frame
        self.sources, self.train_weight, self.epoch_size = dict(sources or {}), train_weight, epoch_size
        self.splits = {k: tuple(v) for k, v in (splits or SPLITS).items()}
        if set(self.splits) != {"train", "test"} or any(len(v) != 2 for v in self.splits.values()):
            raise KeypointsError(f"data.splits must give train and test, each [image folder, CSV]; got {dict(splits)}")
        self.datasets: dict[str, KeypointsDataset] = {}
        self.sample_weights: torch.Tensor | None = None
        self._test_rows = None  # the test split's CSV, read (and checked) at fit

    def _check_root(self) -> None:
        if not self.root.is_dir():
            raise KeypointsError(
                f"data root {self.root} does not exist: set paths.data_dir=... or KEYPOINTS_DATA, or run `make data`"
            )

    def _dataset(self, split: str, names, points, transform, frame) -> KeypointsDataset:
        return KeypointsDataset(self.root / self.splits[split][0], names, points, transform, self.input_size, frame)

    def setup(self, stage: str | None = None) -> None:
        self._check_root()
        if stage in ("fit", "validate", None) and "train" not in self.datasets:
            names, points = read_annotations(self.root / self.splits["train"][1])
            order = np.random.default_rng(self.split_seed).permutation(len(names))
            n_val = max(1, round(len(names) * self.val_fraction))
            val, train = np.sort(order[:n_val]), np.sort(order[n_val:])
            self.datasets["train"] = self._dataset("train", [names[i] for i in train], points[train], self.train_transform, self.train_frame)
            self.datasets["val"] = self._dataset("train", [names[i] for i in val], points[val], self.eval_transform, self.eval_frame)
            _seed(self.datasets["train"], torch.initial_seed() % 2**32)  # set by `seed=`
            if self.sources:
                self._add_sources()
            if (self.root / self.splits["test"][1]).is_file():  # its bad rows named now, not after the whole fit
                self._test_rows = read_annotations(self.root / self.splits["test"][1])
        if stage in ("test", None) and "test" not in self.datasets:
            names, points = self._test_rows or read_annotations(self.root / self.splits["test"][1])
            self.datasets["test"] = self._dataset("test", names, points, self.eval_transform, self.eval_frame)

    def _add_sources(self) -> None:
        """The training split and the extra sources as one data set, sampled by source weight."""
        parts, weights = [self.datasets["train"]], [torch.full((len(self.datasets["train"]),), self.train_weight / len(self.datasets["train"]))]
        for name, src in self.sources.items():
            labels = Path(src["labels"])
            names, points, confidence, point_weights = read_annotations(labels, with_confidence=True)
            keep = confidence >= src.get("min_confidence", 0.0)
            if not keep.any():
                raise KeypointsError(f"data.sources.{name}: no face of {labels} has confidence >= {src.get('min_confidence')}")
            frame = src.get("train_frame") or self.train_frame
            part = KeypointsDataset(Path(src["images"]), [n for n, k in zip(names, keep) if k], points[keep],
                                    src.get("train_transform") or self.train_transform, self.input_size, frame,
                                    point_weights[keep] if src.get("point_weights", True) else None)
            w = torch.as_tensor(confidence[keep] if src.get("by_confidence", False) else np.ones(keep.sum()), dtype=torch.float64)
            parts.append(part)
            weights.append(src.get("weight", 1.0) * w / w.sum())
        self.datasets["train"] = ConcatDataset(parts)
        _seed(self.datasets["train"], torch.initial_seed() % 2**32)
        self.sample_weights = torch.cat([w.double() for w in weights])

    def _loader(self, split: str, shuffle: bool, batch_size: int) -> DataLoader:
        sampler = None
        if split == "train" and self.sample_weights is not None:
            # Lightning wraps this sampler for DDP (each process draws its share of the epoch)
            sampler = WeightedRandomSampler(self.sample_weights, self.epoch_size or len(self.sample_weights))
            shuffle = False
        if split != "train" and self.trainer is not None and self.trainer.world_size > 1:
            # Lightning's default sampler pads the split with repeats to divide it evenly across
            # processes, which would count some faces twice; this one gives every face exactly once.
            ds = self.datasets[split]
            sampler = UnrepeatedDistributedSampler(
                ds, num_replicas=self.trainer.world_size, rank=self.trainer.global_rank, shuffle=False
            )
        return DataLoader(
            self.datasets[split],
            batch_size=batch_size,
            shuffle=shuffle,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            worker_init_fn=seed_augmentation,
            drop_last=split == "train",  # a last train batch of one would break batch norm; eval keeps every face
        )

    def train_dataloader(self) -> DataLoader:
        n = len(self.datasets["train"]) if self.sample_weights is None else self.epoch_size or len(self.sample_weights)
        if n < self.batch_size:  # the last partial batch is dropped: zero steps would be trained
            raise KeypointsError(f"{self.root / self.splits['train'][1]}: {n} training faces after the validation split, "
                                 f"fewer than one batch (data.batch_size={self.batch_size}); lower data.batch_size")
        return self._loader("train", True, self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False, self.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", False, self.eval_batch_size)
