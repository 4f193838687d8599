"""`genmed eval ...`: evaluate image sets and mixture samples; train the domain extractor."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from genmed.fileio import check_output_dir, check_output_file

app = typer.Typer(help="Evaluate generated images (FID/KID, PRDC, diversity, memorisation) "
                  "and mode coverage on 2-D mixtures.", no_args_is_help=True)


@app.command("train-extractor")
def train_extractor_cmd(
    out: Path = typer.Option(Path("phantom_cnn_v1.safetensors"), help="Output .safetensors file."),
    seed: int = typer.Option(0, min=0, help="Seed of the phantom data and the training."),
    n_patients: int = typer.Option(300, help="Phantom patients (8 slices each)."),
    epochs: int = typer.Option(15, help="Training epochs."),
) -> None:
    """Train the phantom CNN feature extractor (the shipped one is seed 0, defaults)."""
    import torch

    from genmed.errors import UserError
    from genmed.metrics.extractor_train import ExtractorConfig, train_phantom_extractor

    if out.suffix != ".safetensors":
        raise UserError(f"{out}: the extractor file must end in .safetensors")
    check_output_file(out)
    torch.set_num_threads(1)  # the shipped weights were trained with one thread
    summary = train_phantom_extractor(str(out), ExtractorConfig(n_patients=n_patients, epochs=epochs, seed=seed))
    typer.echo(json.dumps(summary, indent=2))


@app.command("images")
def images_cmd(
    real: str = typer.Argument(..., help="Real images: a folder, .npy/.npz file, or 'phantom'."),
    fake: Path = typer.Argument(..., help="Generated images: a folder or .npy/.npz file."),
    out: Path = typer.Option(..., "--out", help="Output folder for metrics.json."),
    train: Path = typer.Option(None, help="Training images for the memorisation audit "
                               "(default with 'phantom': the phantom training split)."),
    extractor: str = typer.Option("phantom-cnn", help="'phantom-cnn', a .safetensors phantom CNN, "
                                  "or a TorchScript file."),
    n_boot: int = typer.Option(50, help="Bootstrap resamples."),
    seed: int = typer.Option(0, min=0, help="Seed of the resampling."),
) -> None:
    """Compute every image-set metric (with CIs) between REAL and FAKE; write OUT/metrics.json."""
    from genmed.errors import check_range
    from genmed.fileio import write_json
    from genmed.metrics.evaluate import EvalConfig, evaluate_images
    from genmed.metrics.imagesets import phantom_image_set, read_image_set, resize_to
    from genmed.versions import versions

    check_output_dir(out, files=("metrics.json",))
    check_range("--n-boot", n_boot, 1, 100_000)
    fake_x = read_image_set(fake)
    size = tuple(fake_x.shape[-2:])
    labels = None
    train_x = read_image_set(train) if train is not None else None
    if real == "phantom":
        real_x, labels = phantom_image_set("test", size=size[0], seed=seed)
        if train_x is None:
            train_x, _ = phantom_image_set("train", size=size[0], seed=seed)
    else:
        real_x = read_image_set(real)
    real_x = resize_to(real_x, size)
    if train_x is not None:
        train_x = resize_to(train_x, size)
    result = evaluate_images(
        real_x, fake_x, extractor=extractor, train=train_x, real_labels=labels,
        cfg=EvalConfig(n_boot=n_boot, seed=seed),
    )
    result["inputs"] = {"real": real, "fake": str(fake), "train": str(train) if train else None}
    result["versions"] = versions()
    path = write_json(out / "metrics.json", result)
    q = result["quality"]
    typer.echo(f"FID {q['fid']['value']:.3f} [{q['fid']['low']:.3f}, {q['fid']['high']:.3f}]  "
               f"extractor {result['extractor']['name']} ({result['extractor']['weights_hash'][:12]})")
    typer.echo(str(path))


@app.command("modes-metrics")
def modes_metrics_cmd(
    samples: Path = typer.Argument(..., help="Samples (n, 2) as a .npy file."),
    mixture: str = typer.Option(..., help="ring | grid (VEEGAN/PacGAN settings)."),
    out: Path = typer.Option(None, help="Also write the metrics to this JSON file."),
) -> None:
    """Mode-collapse metrics (HQ share, modes captured, reverse KL) of given samples."""
    import numpy as np

    from genmed.data.toy import get_mixture
    from genmed.errors import UserError
    from genmed.fileio import write_json
    from genmed.metrics.modes import mode_metrics

    if out is not None:
        check_output_file(out)
    spec = get_mixture(mixture)
    if not samples.is_file():
        raise UserError(f"{samples}: samples file not found")
    from genmed.data.io import check_npy_file

    check_npy_file(samples)
    try:
        x = np.load(samples, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise UserError(f"{samples}: not a numeric .npy file ({str(exc)[:160]})") from None
    result = mode_metrics(x, spec).to_dict()
    if out is not None:
        write_json(out, result)
    typer.echo(json.dumps({k: v for k, v in result.items() if k != "counts"}, indent=2))


@app.command("modes")
def modes_cmd(
    out: Path = typer.Option(..., "--out", help="Folder for modes.json, modes.png and run folders."),
    quick: bool = typer.Option(False, help="2 seeds, 200 steps, 5,000 samples, small MLPs (tests)."),
    variants: str = typer.Option("", help="Comma-separated (default: exact, diffusion, gan_dcgan, "
                                 "gan_pacgan4, gan_hinge_sn, vae); also gan_mbstd4, gan_dcgan_z2, gan_mbstd4_z2, "
                                 "gan_hinge_sn_r1, gan_dcgan_r1."),
    mixtures: str = typer.Option("ring,grid", help="ring and/or grid."),
    seeds: int = typer.Option(None, help="Runs per cell (default 5; --quick 2)."),
    steps: int = typer.Option(None, help="Optimiser steps per run (default 8000; --quick 200)."),
    n_samples: int = typer.Option(None, help="Samples scored per run (default 100000)."),
) -> None:
    """Mode-collapse benchmark (VEEGAN/PacGAN ring of 8, grid of 25): every family, mean +- s.e."""
    from rich.console import Console

    from genmed.compare.modes import (
        DEFAULT_VARIANTS,
        QUICK,
        ModeBenchConfig,
        plot_mode_samples,
        run_mode_benchmark,
        table_rows,
    )
    from genmed.errors import check_range
    from genmed.fileio import write_json
    from genmed.train.tracking import progress_enabled
    from genmed.versions import machine

    check_output_dir(out, files=("modes.json", "modes.png"))
    console = Console(stderr=True)
    given = {k: v for k, v in dict(seeds=seeds, steps=steps, n_samples=n_samples).items() if v is not None}
    for name, value in given.items():
        check_range(f"--{name.replace('_', '-')}", value, 1, 10**7)
    cfg = ModeBenchConfig(variants=tuple(v.strip() for v in variants.split(",") if v.strip()) or DEFAULT_VARIANTS,
                          mixtures=tuple(m.strip() for m in mixtures.split(",") if m.strip()),
                          out=str(out), **{**(QUICK if quick else {}), **given})
    result = run_mode_benchmark(cfg, progress=console.log if progress_enabled() else None)
    result["machine"] = machine()
    result["quick"] = quick
    plot_mode_samples(result, out / "modes.png")
    write_json(out / "modes.json", result)
    rows = table_rows(result)
    cols = list(rows[0])
    typer.echo("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        typer.echo("| " + " | ".join(str(r.get(c, "")) for c in cols) + " |")
    typer.echo(str(out / "modes.json"))
