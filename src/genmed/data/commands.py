"""`genmed data`: make the phantom data set, describe an image file. Thin layer over the API."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(help="Data: generate the kidney CT phantom, inspect medical images.",
                  no_args_is_help=True)


@app.command("make")
def make(
    out: Path = typer.Option(..., "--out", help="Output folder (created; must be new or empty "
                             "unless --overwrite)."),
    patients: int = typer.Option(16, "--patients", help="Number of phantom patients."),
    slices_per_patient: int = typer.Option(8, "--slices-per-patient",
                                           help="2D axial slices per patient (ignored with --3d)."),
    size: int = typer.Option(64, "--size", help="In-plane pixels per side (field of view 360 mm)."),
    three_d: bool = typer.Option(False, "--3d", help="Write one 3D volume per patient instead of slices."),
    depth: int = typer.Option(0, "--depth", help="3D: slices per volume (0: same as --size)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Random seed; the same seed gives the same data."),
    lesion_prob: float = typer.Option(0.6, "--lesion-prob",
                                      help="Fraction of patients with a renal lesion (0..1)."),
    malignant_fraction: float = typer.Option(0.5, "--malignant-fraction",
                                             help="Fraction of lesions that are malignant (0..1)."),
    lesion_min_mm: float = typer.Option(6.0, "--lesion-min-mm", help="Smallest lesion diameter (mm)."),
    lesion_max_mm: float = typer.Option(36.0, "--lesion-max-mm", help="Largest lesion diameter (mm)."),
    noisy_fraction: float = typer.Option(0.15, "--noisy-fraction",
                                         help="Fraction of low-dose (high-noise, 45-90 HU) scans."),
    sheet_count: int = typer.Option(24, "--sheet-count", help="Slices shown in contact_sheet.png."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out folder."),
) -> None:
    """Write phantom NIfTI images/masks, manifest.csv (patient-level split) and a contact sheet."""
    from genmed.data.export import write_phantom_dataset
    from genmed.data.phantom import PhantomConfig
    from genmed.errors import check_range

    for name, value, high in (("--patients", patients, 100_000), ("--slices-per-patient", slices_per_patient, 1024),
                              ("--sheet-count", sheet_count, 10_000)):
        check_range(name, value, 1, high)

    cfg = PhantomConfig(size=size, depth=depth or None, lesion_prob=lesion_prob,
                        malignant_fraction=malignant_fraction,
                        lesion_diameter_mm=(lesion_min_mm, lesion_max_mm), noisy_fraction=noisy_fraction)
    res = write_phantom_dataset(out, n_patients=patients, slices_per_patient=slices_per_patient,
                                three_d=three_d, cfg=cfg, seed=seed, sheet_count=sheet_count,
                                overwrite=overwrite)
    counts = ", ".join(f"{k} {v}" for k, v in res.label_counts.items())
    typer.echo(f"wrote {res.n_items} {'volumes' if three_d else 'slices'} ({counts}) to {res.out}")
    typer.echo(f"manifest: {res.manifest}")
    typer.echo(f"contact sheet: {res.contact_sheet}")


@app.command("info")
def info(
    path: Path = typer.Argument(..., help="NIfTI file, DICOM file or series folder, PNG/TIFF file "
                                "or folder, or MedMNIST .npz."),
    fmt: str = typer.Option("text", "--format", help="Output format: text or json."),
) -> None:
    """Print an image's shape, spacing (mm), value range and modality."""
    from genmed.data.io import describe
    from genmed.errors import check_choice

    check_choice("--format", fmt, ("text", "json"))
    facts = describe(path)
    if fmt == "json":
        typer.echo(json.dumps(facts, indent=2))
        return
    for key, value in facts.items():
        typer.echo(f"{key:>13}: {value}")
