"""`train(cfg)`: one engine run, or, for a family built on another trained model
(`Capabilities.builds_on`), its stages in turn, each a normal engine run.

    train(TrainConfig(family="ldm", size=256, out="RUN"))                    # RUN/autoencoder, RUN
    train(TrainConfig(family="ldm", size=256, autoencoder="AE", out="RUN"))  # reuse stage one

Latent diffusion (Rombach et al. 2022; Pinaya et al. 2022) trains in two runs:
1. the "autoencoder" family into RUN/autoencoder (its options: `cfg.options["autoencoder"]`,
   its steps: `cfg.autoencoder_steps`, its optimiser: the autoencoder's registry recipe), unless
   `cfg.autoencoder` names a trained autoencoder run to reuse;
2. that autoencoder frozen inside a `LatentDiffusionModel` (its latents scaled by 1 / their std
   over the first training images), whose diffusion UNet the engine trains into RUN with the
   ldm recipe and the rest of `cfg.options` (on each item's posterior moments, computed once:
   `LatentDiffusionModel.training_data`). The stage-two checkpoint holds both stages'
   weights and architectures and the stage-one path, so `load_run(RUN)`, `genmed sample RUN`
   and `--resume RUN` need nothing else.
Every other family is handed to the engine unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch.utils.data import Dataset

from genmed.config import from_dict
from genmed.errors import UserError
from genmed.models.autoencoder import AutoencoderModel
from genmed.models.base import GenerativeModel
from genmed.models.latent import SHARED, LDMConfig, latent_diffusion, ldm_options
from genmed.models.registry import capabilities
from genmed.train import engine
from genmed.train.config import TrainConfig
from genmed.train.data import load_dataset
from genmed.train.engine import RunResult, preview_batch
from genmed.train.precision import resolve_numerics
from genmed.train.run import load_run

SCALE_IMAGES = 64  # training images whose latents set the scale factor ("the first batch")
# TrainConfig fields stage one takes from the ldm run: data, size, numerics, logging, seed
_STAGE_ONE_FIELDS = ("data", "size", "spatial_dims", "in_channels", "n_patients", "batch_size",
                     "precision", "device", "seed", "deterministic", "log_every", "sample_every",
                     "sample_n", "ckpt_every", "ckpt_minutes", "keep_checkpoints", "num_workers")


def train(cfg: TrainConfig, *, model: GenerativeModel | None = None,
          dataset: Dataset | None = None, resume: bool = False) -> RunResult:
    """Train `cfg` (see `genmed.train.engine.train`); a family that builds on another trained
    model, given no model, trains its stages first (`train_ldm`)."""
    first = capabilities(cfg.family).builds_on
    if model is None and not resume and first == "autoencoder":
        return train_ldm(cfg, dataset=dataset)
    if model is None and not resume and first == "diffusion":
        raise UserError(f"the {cfg.family} model is distilled from a trained diffusion run: "
                        "genmed distill TEACHER_RUN --out STUDENT_RUN")
    return engine.train(cfg, model=model, dataset=dataset, resume=resume)


def stage_one_config(cfg: TrainConfig) -> TrainConfig:
    """The autoencoder run of ldm run `cfg`: into OUT/autoencoder, the autoencoder recipe."""
    ae_options, _ = ldm_options(cfg.options)
    shared = {name: getattr(cfg, name) for name in _STAGE_ONE_FIELDS}
    return TrainConfig(family="autoencoder", recipe=cfg.recipe,
                       steps=cfg.autoencoder_steps or cfg.steps,
                       out=str(Path(cfg.out) / "autoencoder"), options=ae_options, **shared)


def train_ldm(cfg: TrainConfig, *, dataset: Dataset | None = None) -> RunResult:
    """Stage one (unless `cfg.autoencoder` is a run to reuse), then stage two into `cfg.out`."""
    engine.check_new_run_dir(cfg.out)
    ae_options, unet_options = ldm_options(cfg.options)
    num_classes = cfg.num_classes if cfg.cond == "label" else 0
    if cfg.autoencoder is not None:
        if ae_options:
            raise UserError("--autoencoder reuses a trained autoencoder: drop options.autoencoder")
        ae_run = Path(cfg.autoencoder)
        autoencoder = load_autoencoder(ae_run, cfg)
    else:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise UserError("under torchrun, train the autoencoder first (genmed train --family "
                            "autoencoder) and pass it with --autoencoder RUN")
        # every option checked before the (long) first stage starts
        from_dict(LDMConfig, dict(spatial_dims=cfg.spatial_dims, in_channels=cfg.in_channels,
                                  size=cfg.size, num_classes=num_classes,
                                  autoencoder=ae_options, **unet_options), where="ldm options")
        stage_one = stage_one_config(cfg)
        dataset = dataset if dataset is not None else load_dataset(cfg)
        engine.train(stage_one, dataset=dataset)
        ae_run = Path(stage_one.out)
        autoencoder = load_autoencoder(ae_run, cfg)
    dataset = dataset if dataset is not None else load_dataset(cfg)
    device = resolve_numerics(cfg.device, "fp32").device
    images = preview_batch(dataset, SCALE_IMAGES)["image"]
    model = latent_diffusion(autoencoder.to(device), images, num_classes=num_classes,
                             autoencoder_run=str(ae_run.resolve()),
                             generator=torch.Generator(device).manual_seed(cfg.seed),
                             **unet_options)
    stage_two = cfg.replace(autoencoder=str(ae_run.resolve()), autoencoder_steps=None)
    return engine.train(stage_two, model=model, dataset=dataset)


def load_autoencoder(run_dir: Path, cfg: TrainConfig) -> AutoencoderModel:
    """The trained autoencoder of run `run_dir`, checked to fit the images of ldm run `cfg`."""
    model, _ = load_run(run_dir)
    if not isinstance(model, AutoencoderModel):
        raise UserError(f"--autoencoder {run_dir}: not an autoencoder run (family {model.family})")
    wanted = dict(spatial_dims=cfg.spatial_dims, in_channels=cfg.in_channels, size=cfg.size)
    for name in SHARED:
        if name in wanted and getattr(model.config, name) != wanted[name]:
            raise UserError(f"--autoencoder {run_dir}: trained at {name}="
                            f"{getattr(model.config, name)}, this run has {name}={wanted[name]}")
    return model
