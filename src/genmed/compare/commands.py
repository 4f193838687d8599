"""`genmed compare`: the family comparison (`run`, the default) and the mode-collapse experiment.

`genmed compare [OPTIONS]` is `genmed compare run [OPTIONS]`: trains (or loads) diffusion, GAN
and VAE under one budget and compares them. `genmed compare modes` trains every family on the
ring/grid mixtures (it was `genmed eval modes`, which stays as a deprecated alias for one release).
"""

from __future__ import annotations

from pathlib import Path

import typer
from typer.core import TyperGroup

from genmed.errors import check_range
from genmed.fileio import check_output_dir


class _RunByDefault(TyperGroup):
    """A group whose first argument, when it is not a command (or --help), selects `run`.

    Keeps `genmed compare --families ... --out DIR` working now that `compare` has subcommands.
    """

    def parse_args(self, ctx, args):
        if not args or (args[0] not in self.commands and args[0] not in ctx.help_option_names):
            args = ["run", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_RunByDefault,
    help="Compare the families under an equal budget (`run`, the default) and the mode-collapse "
    "experiment (`modes`).",
    epilog="`genmed compare [OPTIONS]` is `genmed compare run [OPTIONS]`.",
)


@app.command("run")
def compare(
    families: str = typer.Option("diffusion,gan,vae", help="Comma-separated arms: diffusion, "
                                  "gan (stabilised), vae; baselines dcgan, sngan."),
    data: str = typer.Option("phantom", help="'phantom', a manifest CSV or an image folder."),
    size: int = typer.Option(32, help="Image side in pixels."),
    n_patients: int = typer.Option(None, help="Phantom patients, split by patient (default 96; "
                                   "--quick: 12)."),
    budget_images: int = typer.Option(None, help="Equal budget: training images seen per family "
                                      "(default 40000)."),
    budget_seconds: float = typer.Option(None, help="Equal budget: training wall-clock seconds "
                                         "per family (instead of --budget-images)."),
    n_samples: int = typer.Option(None, help="Generated images per family for the metrics "
                                  "(default 256; --quick: 32)."),
    study_n: int = typer.Option(None, help="Images per setting in the diffusion sampler study "
                                "(default 64; --quick: 16)."),
    runs: str = typer.Option("", help="Existing run folders, one per family in --families order "
                             "(skips training)."),
    n_boot: int = typer.Option(None, help="Bootstrap resamples for the CIs (default 30; --quick: 10)."),
    seed: int = typer.Option(0, min=0, help="Seed of data split, training and sampling."),
    quick: bool = typer.Option(False, help="Tiny networks and sizes (seconds; for tests)."),
    device: str = typer.Option("auto", help="auto (CUDA when present), cpu or cuda."),
    precision: str = typer.Option("auto", help="auto (bf16 where fast), bf16 or fp32."),
    out: str = typer.Option(..., "--out", help="Output folder: report.html, metrics.json, runs/."),
) -> None:
    """Compare the families under an equal compute budget; write OUT/report.html + metrics.json."""
    from rich.console import Console

    from genmed.compare.api import compare as run_compare
    from genmed.compare.config import QUICK_STUDY, STUDY, CompareConfig
    from genmed.train.tracking import progress_enabled

    check_output_dir(out, files=("report.html", "metrics.json"))
    for name, value, high in (("--size", size, 512), ("--n-patients", n_patients, 10**5),
                              ("--budget-images", budget_images, 10**9), ("--n-samples", n_samples, 10**5),
                              ("--study-n", study_n, 10**5), ("--n-boot", n_boot, 10**5)):
        if value is not None and value > high:  # before anything is trained or allocated
            check_range(name, value, 1, high)  # (CompareConfig refuses values < 1)
    console = Console(stderr=True)
    cfg = CompareConfig(
        families=tuple(f.strip() for f in families.split(",") if f.strip()), data=data, size=size,
        n_patients=_default(n_patients, 12 if quick else 96), budget_images=budget_images, budget_seconds=budget_seconds,
        n_samples=_default(n_samples, 32 if quick else 256),
        study_n=_default(study_n, 16 if quick else 64), study=QUICK_STUDY if quick else STUDY,
        runs=tuple(r for r in runs.split(",") if r), n_boot=_default(n_boot, 10 if quick else 30), seed=seed, quick=quick,
        device=device, precision=precision, out=out)
    result = run_compare(cfg, progress=console.log if progress_enabled() else None)
    for family, r in result["families"].items():
        fid = r["quality"]["fid"]
        typer.echo(f"{family}: FID {fid['value']:.3f} [{fid['low']:.3f}, {fid['high']:.3f}]  "
                   f"recall {r['diversity']['recall']['value']:.3f}")
    typer.echo(f"{out}/report.html")


@app.command("modes")
def modes(
    out: Path = typer.Option(..., "--out", help="Folder for modes.json, modes.png and run folders."),
    quick: bool = typer.Option(False, help="2 seeds, 200 steps, 5,000 samples, small MLPs (tests)."),
    variants: str = typer.Option("", help="Comma-separated (default: exact, diffusion, gan_dcgan, "
                                 "gan_pacgan4, gan_hinge_sn, vae); also gan_mbstd4, gan_dcgan_z2, gan_mbstd4_z2, "
                                 "gan_hinge_sn_r1, gan_dcgan_r1."),
    mixtures: str = typer.Option("ring,grid", help="ring and/or grid."),
    seeds: int = typer.Option(None, help="Runs per cell (default 5; --quick 2)."),
    steps: int = typer.Option(None, help="Optimiser steps per run (default 8000; --quick 200)."),
    n_samples: int = typer.Option(None, help="Samples scored per run (default 100000)."),
    device: str = typer.Option("auto", help="auto (CUDA when present), cpu or cuda."),
    precision: str = typer.Option("fp32", help="fp32 (default: tiny MLPs gain nothing from bf16), "
                                  "bf16 or auto."),
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
    from genmed.fileio import write_json
    from genmed.train.tracking import progress_enabled
    from genmed.versions import machine

    console = Console(stderr=True)
    from genmed.errors import check_range

    check_output_dir(out, files=("modes.json", "modes.png"))
    given = {k: v for k, v in dict(seeds=seeds, steps=steps, n_samples=n_samples).items() if v is not None}
    for name, value in given.items():
        check_range(f"--{name.replace('_', '-')}", value, 1, 10**7)
    cfg = ModeBenchConfig(variants=tuple(v.strip() for v in variants.split(",") if v.strip()) or DEFAULT_VARIANTS,
                          mixtures=tuple(m.strip() for m in mixtures.split(",") if m.strip()),
                          device=device, precision=precision, out=str(out),
                          **{**(QUICK if quick else {}), **given})
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


def _default(value, fallback):
    return fallback if value is None else value
