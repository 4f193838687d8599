"""`genmed train`, `genmed sample` and `genmed distill`: a thin layer over `genmed.train`.

Every `train` option is also a key of a `--config` YAML/JSON file (`TrainConfig` fields);
options given on the command line override the file. The resolved config is written to
RUN_DIR/config.yaml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from genmed.errors import UserError

_RESUME_OK = {"steps"}  # options that may change when a run is resumed


def train(
    family: str = typer.Option(None, help="Model family: diffusion, gan, vae, autoencoder or ldm."),
    data: str = typer.Option(None, help="phantom, a manifest CSV or a folder of images."),
    size: int = typer.Option(None, help="Image side in pixels (voxels in 3D)."),
    spacing: str = typer.Option(None, "--spacing", help="Resample your scans to this many mm per "
                                "pixel (1.5, or z,y,x: 2.5,1.5,1.5; 2D: y,x), then centre crop / "
                                "pad to --size (default: resize each scan to --size)."),
    spatial_dims: int = typer.Option(None, help="2 (slices) or 3 (volumes)."),
    cond: str = typer.Option(None, help="none, or label for class-conditional models."),
    steps: int = typer.Option(None, help="Optimiser steps in total."),
    batch_size: int = typer.Option(None, help="Global batch size."),
    lr: float = typer.Option(None, help="Peak learning rate."),
    precision: str = typer.Option(None, help="auto, bf16, fp16 (CUDA) or fp32."),
    device: str = typer.Option(None, help="auto, cpu or cuda."),
    seed: int = typer.Option(None, help="Seed of weights, noise and data order."),
    ckpt_every: int = typer.Option(None, help="Steps between checkpoints."),
    ckpt_minutes: float = typer.Option(None, help="Also checkpoint after this many minutes of "
                                       "wall time (default 10; 0: by steps only)."),
    sample_every: int = typer.Option(None, help="Steps between sample grids (0: at the end)."),
    num_workers: int = typer.Option(None, help="DataLoader worker processes."),
    compile: bool = typer.Option(None, "--compile/--no-compile", help="torch.compile each network "
                                 "(TorchInductor; the first steps pay the compilation)."),
    channels_last: bool = typer.Option(None, "--channels-last/--no-channels-last",
                                       help="Channels-last memory format for convolutions."),
    autoencoder: Path = typer.Option(None, "--autoencoder",
                                     help="ldm: a trained autoencoder run to reuse as stage one."),
    autoencoder_steps: int = typer.Option(None, help="ldm: steps of the stage-one autoencoder."),
    init: Path = typer.Option(None, "--init", help="Start from the weights of this trained run of "
                              "the same family (fine-tuning; a new optimiser, schedule and step count)."),
    config: Path = typer.Option(None, "--config", help="YAML/JSON file of TrainConfig keys."),
    out: Path = typer.Option(None, "--out", help="Run directory to create."),
    resume: Path = typer.Option(None, "--resume", help="Run directory to continue."),
) -> None:
    """Train a generative model (one engine for every family; torchrun for multi-process).

    --family ldm trains an autoencoder into OUT/autoencoder, then latent diffusion into OUT
    (or reuses --autoencoder RUN)."""
    given = {k: v for k, v in dict(
        family=family, data=data, size=size, spatial_dims=spatial_dims, cond=cond, steps=steps,
        batch_size=batch_size, lr=lr, precision=precision, device=device, seed=seed,
        ckpt_every=ckpt_every, ckpt_minutes=ckpt_minutes, sample_every=sample_every,
        num_workers=num_workers, compile=compile, channels_last=channels_last,
        autoencoder=str(autoencoder) if autoencoder is not None else None,
        autoencoder_steps=autoencoder_steps, spacing_mm=_spacing(spacing),
        init=str(init) if init is not None else None,
    ).items() if v is not None}
    from genmed import train as api

    if resume is not None:
        extra = sorted(set(given) - _RESUME_OK) + (["--config"] if config else []) + (
            ["--out"] if out else [])
        if extra:
            raise UserError(f"--resume takes only --steps; drop {', '.join(extra)}")
        from genmed.train.run import check_resume_steps, load_config_of

        cfg = load_config_of(resume)
        if "steps" in given:
            check_resume_steps(resume, given["steps"])  # before the data is read
        dataset = _data_with_summary(cfg)
        result = api.resume(resume, steps=given.get("steps"), dataset=dataset)
    else:
        if out is None:
            raise UserError("--out RUN_DIR is required (or --resume RUN_DIR)")
        cfg = build_config(config, given, out)
        from genmed.train.engine import check_new_run_dir

        check_new_run_dir(cfg.out)  # before the data is read (minutes for a large folder)
        if cfg.init is not None:  # its weights read and checked against the model, before the data
            from genmed.train.engine import build_model
            from genmed.train.warm_start import warm_start

            warm_start(build_model(cfg), cfg.init, cfg.family)
        result = api.train(cfg, dataset=_data_with_summary(cfg))
    typer.echo(f"trained {result.step} steps ({result.precision} on {result.device}, "
               f"{result.img_per_s:.1f} img/s) -> {result.run_dir}")


def _spacing(text: str | None) -> tuple[float, ...] | None:
    """`--spacing` as mm (`genmed.data.spacing.parse_spacing`), None when not given."""
    if text is None:
        return None
    from genmed.data.spacing import parse_spacing

    return parse_spacing(text)


def _data_with_summary(cfg: Any) -> Any:
    """The training split of `cfg.data`, after printing what it is and what is held out
    (`genmed.data.summary`; rank 0 only under torchrun). `--cond label` on unlabelled data
    is refused here, before any training."""
    import os

    from genmed.data.summary import summary_lines
    from genmed.train.data import load_dataset

    dataset = load_dataset(cfg)
    summary = getattr(dataset, "summary", None)
    if summary and os.environ.get("RANK", "0") == "0":
        for line in summary_lines(summary):
            typer.echo(line)
    return dataset


def build_config(config: Path | None, given: dict[str, Any], out: Path) -> Any:
    """A `TrainConfig` from a config file (if any) overridden by command-line options."""
    from genmed.config import from_dict, load_config, to_dict
    from genmed.train.config import TrainConfig

    base = load_config(TrainConfig, config) if config is not None else TrainConfig()
    return from_dict(TrainConfig, {**to_dict(base), **given, "out": str(out)}, where="train")


def sample(
    run_dir: Path = typer.Argument(..., help="Run directory written by genmed train."),
    n: int = typer.Option(64, "-n", help="Number of images."),
    sampler: str = typer.Option(None, help="Sampler name (diffusion: ddpm, ddim, ...)."),
    steps: int = typer.Option(None, help="Sampler steps (default: the sampler's own)."),
    guidance: float = typer.Option(None, help="Classifier-free guidance scale."),
    temperature: float = typer.Option(None, help="GANs: latent temperature T, z ~ N(0, T^2 I) "
                                      "(default 1; below 1 trades recall for precision)."),
    class_name: str = typer.Option(None, "--class", help="Class to sample (e.g. malignant)."),
    seed: int = typer.Option(0, help="Sampling seed."),
    precision: str = typer.Option("auto", help="auto (bf16 where the hardware runs it fast, "
                                  "else fp32), bf16, fp32; fp16 on CUDA."),
    compile: bool = typer.Option(False, "--compile", help="torch.compile the networks first."),
    channels_last: bool = typer.Option(False, "--channels-last",
                                       help="Channels-last memory format for convolutions."),
    out: Path = typer.Option(..., "--out", help="Folder for NIfTI files and grid.png."),
) -> None:
    """Sample images from a trained run (EMA weights): NIfTI in HU and a PNG grid."""
    if n < 1:
        raise UserError(f"-n {n}: must be at least 1")
    from genmed.train import sample_run

    paths = sample_run(run_dir, out, n=n, steps=steps, sampler=sampler, guidance=guidance,
                       temperature=temperature, class_name=class_name, seed=seed,
                       precision=precision, compile=compile, channels_last=channels_last)
    typer.echo(f"wrote {n} samples and {paths[-2].name} -> {out}")


def distill(
    teacher_run: Path = typer.Argument(..., help="A trained diffusion or ldm run."),
    out: Path = typer.Option(..., "--out", help="Run directory of the student to create."),
    method: str = typer.Option("consistency", help="Distillation method: consistency "
                               "(Song et al. 2023)."),
    steps: int = typer.Option(2000, help="Optimiser steps of the student."),
    batch_size: int = typer.Option(None, help="Global batch size (default: the teacher run's)."),
    lr: float = typer.Option(None, help="Peak learning rate (default: the method's recipe)."),
    guidance: float = typer.Option(None, help="Teacher classifier-free guidance scale the "
                                   "student learns (class-conditional teachers; default 1)."),
    num_scales: int = typer.Option(None, help="N, teacher ODE grid points (default 40)."),
    prediction: str = typer.Option(None, help="What the student's network output is read as: "
                                   "eps or v (Salimans & Ho 2022; default: the method's)."),
    distance: str = typer.Option(None, help="Consistency distance: l2 or pseudo_huber "
                                 "(Song & Dhariwal 2023; default l2)."),
    weighting: str = typer.Option(None, help="Weight of each ODE grid interval: uniform or ict "
                                  "(1 / sigma gap, Song & Dhariwal 2023; default uniform)."),
    device: str = typer.Option(None, help="auto, cpu or cuda (default: the teacher run's)."),
    seed: int = typer.Option(None, help="Seed (default: the teacher run's)."),
) -> None:
    """Distil a trained diffusion run into a 1-4 step student (consistency distillation);
    sample it with `genmed sample STUDENT_RUN --steps 1`."""
    from genmed.train import distill as api

    options = {k: v for k, v in dict(guidance=guidance, num_scales=num_scales,
                                     prediction=prediction, distance=distance,
                                     weighting=weighting).items() if v is not None}
    result = api(teacher_run, out, method=method, steps=steps, batch_size=batch_size, lr=lr,
                 device=device, seed=seed, options=options)
    typer.echo(f"distilled {result.step} steps ({result.precision} on {result.device}) -> "
               f"{result.run_dir}")
