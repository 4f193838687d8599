"""`genmed compare`: train (or load) diffusion, GAN and VAE under one budget and compare them."""

from __future__ import annotations

import typer

from genmed.errors import check_range
from genmed.fileio import check_output_dir


def compare(
    families: str = typer.Option("diffusion,gan,vae", help="Comma-separated families."),
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
        runs=tuple(r for r in runs.split(",") if r), n_boot=_default(n_boot, 10 if quick else 30), seed=seed, quick=quick, out=out)
    result = run_compare(cfg, progress=console.log if progress_enabled() else None)
    for family, r in result["families"].items():
        fid = r["quality"]["fid"]
        typer.echo(f"{family}: FID {fid['value']:.3f} [{fid['low']:.3f}, {fid['high']:.3f}]  "
                   f"recall {r['diversity']['recall']['value']:.3f}")
    typer.echo(f"{out}/report.html")


def _default(value, fallback):
    return fallback if value is None else value
