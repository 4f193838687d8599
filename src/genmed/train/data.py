"""Training data: the data set, and a seeded, resumable, DDP-aware batch order.

Batch order is a function of (seed, epoch) only: `DistributedSampler` draws one permutation
per epoch from `seed + epoch` (with one process it is a plain seeded shuffle) and each of the
`world` processes takes every `world`-th index, so the union of the processes' k-th batches is
the single-process k-th global batch. Resuming at step s restarts epoch s // steps_per_epoch
and skips the batches already seen, so a resumed run sees the same batches as an unbroken one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from genmed.errors import UserError
from genmed.train.config import TrainConfig


def load_dataset(cfg: TrainConfig) -> Dataset:
    """The training split of `cfg.data` ("phantom", a manifest CSV or an image folder),
    resampled to `cfg.spacing_mm` (mm) when set."""
    from genmed.data.datasets import load_training_data

    kwargs = {} if cfg.n_patients is None else {"n_patients": cfg.n_patients}
    ds = load_training_data(cfg.data, size=cfg.size, spatial_dims=cfg.spatial_dims,
                            split="train", seed=cfg.seed, spacing_mm=cfg.spacing_mm, **kwargs)
    check_conditioning(cfg, ds)
    return ds


def check_conditioning(cfg: TrainConfig, dataset: Dataset) -> None:
    """`cond="label"` needs labelled data: refuse unlabelled data before any training."""
    if cfg.cond == "label" and not getattr(dataset, "labelled", True):
        raise UserError(f"--cond label needs class labels, but {cfg.data} has none (no `label` "
                        "column, no class folders); train unconditionally (--cond none) or add labels")


DATA_RECORD = "data.json"  # RUN_DIR/data.json: what the model was trained on


def write_data_record(run_dir: str | Path, dataset: Dataset) -> Path | None:
    """Write RUN_DIR/data.json: the data set's `info` (modality, units, intensity map, spacing
    of a model pixel, orientation) and its `summary` (splits), so that `genmed sample` writes
    images in the data's units and spacing. Data sets without `info` write nothing."""
    from genmed.fileio import write_json

    info = getattr(dataset, "info", None)
    if not info:
        return None
    record = {**{k: v for k, v in info.items() if k != "volume_intensity"},
              "summary": getattr(dataset, "summary", None)}
    return write_json(Path(run_dir) / DATA_RECORD, record)


def read_data_record(run_dir: str | Path) -> dict[str, Any] | None:
    """RUN_DIR/data.json, or None for runs that predate it (phantom CT in HU assumed)."""
    path = Path(run_dir) / DATA_RECORD
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: unreadable data record ({exc})") from None
    if not isinstance(record, dict):
        raise UserError(f"{path}: malformed data record")
    return record


class _Skip(Sampler[int]):
    """The indices of `sampler` after the first `skip` (the part of an epoch not yet seen)."""

    def __init__(self, sampler: Sampler[int], skip: int) -> None:
        self.sampler, self.skip = sampler, skip

    def __iter__(self) -> Iterator[int]:
        return iter(list(self.sampler)[self.skip:])

    def __len__(self) -> int:
        return max(0, len(self.sampler) - self.skip)  # type: ignore[arg-type]


def check_batches(n_images: int, batch_size: int, world: int = 1) -> None:
    """Refuse a batch size the `world` processes cannot split, or that `n_images` cannot fill
    once per epoch (checked before anything is written to the run folder)."""
    if batch_size % world:
        raise UserError(f"batch_size={batch_size} is not divisible by the {world} DDP processes")
    if -(-n_images // world) < batch_size // world:  # DistributedSampler: ceil(n / world) each
        raise UserError(f"data set has {n_images} images, fewer than batch_size={batch_size}")


class BatchOrder:
    """Per-epoch DataLoaders over `dataset` for process `rank` of `world`."""

    def __init__(self, dataset: Dataset, cfg: TrainConfig, *, rank: int = 0, world: int = 1,
                 pin_memory: bool = False) -> None:
        check_batches(len(dataset), cfg.batch_size, world)  # type: ignore[arg-type]
        self.dataset, self.cfg, self.pin_memory = dataset, cfg, pin_memory
        self.per_rank = cfg.batch_size // world
        self.sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True,
                                          seed=cfg.seed, drop_last=False)
        self.steps_per_epoch = len(self.sampler) // self.per_rank

    def epoch_loader(self, step: int) -> DataLoader:
        """The loader for the rest of the epoch that contains global step `step`."""
        epoch, done = divmod(step, self.steps_per_epoch)
        self.sampler.set_epoch(epoch)
        generator = torch.Generator().manual_seed(self.cfg.seed * 100_003 + epoch)
        return DataLoader(self.dataset, batch_size=self.per_rank,
                          sampler=_Skip(self.sampler, done * self.per_rank),
                          num_workers=self.cfg.num_workers, drop_last=True,
                          generator=generator, pin_memory=self.pin_memory,
                          persistent_workers=False)


def to_device(batch: dict, device: torch.device) -> dict[str, torch.Tensor]:
    """The tensor entries of a collated batch on `device` (strings such as ids dropped)."""
    non_blocking = device.type == "cuda"
    return {k: v.to(device, non_blocking=non_blocking) for k, v in batch.items()
            if isinstance(v, torch.Tensor)}
