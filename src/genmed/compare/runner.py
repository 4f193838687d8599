"""Train (or load) each family under one compute budget, and sample it, timed.

All training goes through the one engine (`genmed.train.train`); a family differs only in its
network options and its registry recipe "compare". Data: the training split of `cfg.data`;
the held-out real reference is its validation + test patients (never seen in training).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genmed.compare.config import CompareConfig
from genmed.errors import UserError


@dataclass
class FamilyRun:
    """A trained family: its EMA model, run folder and training facts."""

    family: str
    model: torch.nn.Module
    run_dir: Path
    steps: int
    images_seen: int
    train_seconds: float | None  # None when loaded from an existing run
    img_per_s: float | None
    options: dict


def load_splits(cfg: CompareConfig):
    """(train ImageDataset, held-out real images (N, 1, H, W) in [-1, 1], their labels)."""
    from genmed.data import load_training_data, patient_split

    kw = dict(size=cfg.size, spatial_dims=2, seed=cfg.seed)
    if cfg.n_patients is not None:
        kw["n_patients"] = cfg.n_patients
    if cfg.data == "phantom":  # one phantom draw, split by patient as load_training_data does
        everything = load_training_data("phantom", split="all", **kw)
        idx = patient_split(everything.patient_ids, seed=cfg.seed)
        train = everything.subset(idx["train"])
        held = everything.subset(np.concatenate([idx["val"], idx["test"]]))
    else:
        train = load_training_data(cfg.data, split="train", **kw)
        parts = []
        for split in ("val", "test"):
            try:
                parts.append(load_training_data(cfg.data, split=split, **kw))
            except UserError:  # an empty split in a small manifest
                continue
        if not parts:
            raise UserError(f"{cfg.data}: no held-out (val/test) patients to compare against")
        real = np.concatenate([p.images.numpy() for p in parts])
        return train, real, np.concatenate([p.labels.numpy() for p in parts])
    return train, held.images.numpy(), held.labels.numpy()


def _train_config(arm: str, cfg: CompareConfig, steps: int, out: Path):
    from genmed.train import TrainConfig

    from genmed.compare.config import ARM_FAMILY, RECIPE

    return TrainConfig(family=ARM_FAMILY[arm], recipe=RECIPE, data=cfg.data, size=cfg.size,
                       n_patients=cfg.n_patients, steps=steps, batch_size=cfg.batch_size,
                       ema_decay=cfg.ema_decay, precision=cfg.precision, device=cfg.device,
                       seed=cfg.seed, log_every=max(1, min(25, steps // 20)), ckpt_every=steps,
                       keep_checkpoints=1, sample_n=16, out=str(out), options=cfg.network(arm))


def _steps_for_seconds(family: str, cfg: CompareConfig, train_ds, work: Path) -> int:
    """Steps that fit `cfg.budget_seconds`, from a measured 8-step probe of this family."""
    from genmed.train import train

    probe = work / f".probe-{family}"
    shutil.rmtree(probe, ignore_errors=True)
    result = train(_train_config(family, cfg, 8, probe), dataset=train_ds)
    shutil.rmtree(probe, ignore_errors=True)
    return max(1, int(cfg.budget_seconds * result.img_per_s / cfg.batch_size))


def train_family(family: str, cfg: CompareConfig, train_ds) -> FamilyRun:
    """Train `family` under the config's budget into OUT/runs/<family>."""
    from genmed.train import load_run, train

    run_dir = Path(cfg.out) / "runs" / family
    kind, amount = cfg.budget
    if kind == "images":
        steps = max(1, int(amount) // cfg.batch_size)
    else:
        steps = _steps_for_seconds(family, cfg, train_ds, run_dir.parent)
    shutil.rmtree(run_dir, ignore_errors=True)  # a comparison always trains afresh
    tcfg = _train_config(family, cfg, steps, run_dir)
    t0 = time.perf_counter()
    result = train(tcfg, dataset=train_ds)
    seconds = time.perf_counter() - t0
    model, _ = load_run(run_dir, device=result.device)
    return FamilyRun(family, model, run_dir, steps, steps * cfg.batch_size, round(seconds, 1),
                     round(result.img_per_s, 1), dict(tcfg.options))


def load_family(family: str, run_dir: str | Path, device: str = "cpu") -> FamilyRun:
    """An existing run of arm `family` (its config names the arm's registry family and, for a
    GAN, its variant; UserError otherwise)."""
    from genmed.compare.config import ARM_FAMILY, NETWORKS
    from genmed.train import load_run
    from genmed.train.run import load_config_of

    tcfg = load_config_of(run_dir)
    if tcfg.family != ARM_FAMILY[family]:
        raise UserError(f"{run_dir}: is a {tcfg.family} run, but --families puts {family} here")
    variant = NETWORKS[family].get("variant")
    if variant is not None and tcfg.options.get("variant", "dcgan") != variant:
        raise UserError(f"{run_dir}: is a {tcfg.options.get('variant', 'dcgan')} GAN, but "
                        f"--families puts {family} ({variant}) here")
    model, tcfg = load_run(run_dir, device=device)
    return FamilyRun(family, model, Path(run_dir), tcfg.steps, tcfg.steps * tcfg.batch_size,
                     None, None, dict(tcfg.options))


def autocast(precision: str, device: str | torch.device = "cpu"):
    """The engine's autocast context for sampling on `device` ("auto": bf16 where fast)."""
    from genmed.train.precision import resolve_numerics

    return resolve_numerics(str(device), precision).autocast()


@torch.no_grad()
def sample_family(run: FamilyRun, n: int, seed: int, precision: str, chunk: int = 64,
                  **kw) -> tuple[np.ndarray, float]:
    """(n samples (n, 1, H, W) in [-1, 1], seconds per image) from one seeded generator on the
    model's device."""
    from genmed.models.base import device_of

    device = device_of(run.model)
    gen = torch.Generator(device).manual_seed(seed)
    t0 = time.perf_counter()
    parts = []
    with autocast(precision, device.type):
        for s in range(0, n, chunk):
            parts.append(run.model.sample(min(chunk, n - s), generator=gen, **kw).float())
    seconds = time.perf_counter() - t0
    x = torch.cat(parts).clamp(-1, 1).cpu().numpy()
    return x, seconds / n
