"""`genmed data`: make the phantom data set, describe an image file. Thin layer over the API."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(help="Data: generate the kidney CT phantom, scan a folder of your own scans, "
                  "inspect medical images.",
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
                                "or folder, MedMNIST .npz; or what `genmed train --data` takes: a "
                                "manifest CSV or a folder of several scans."),
    fmt: str = typer.Option("text", "--format", help="Output format: text or json."),
) -> None:
    """Print an image's shape, spacing (mm), value range, modality, units and orientation; for
    a manifest or a folder of scans, one line per volume (what training would read)."""
    from dataclasses import asdict

    from genmed.data.io import describe
    from genmed.data.scan import is_collection, scan_folder, scan_manifest, summary_lines
    from genmed.errors import check_choice

    check_choice("--format", fmt, ("text", "json"))
    if is_collection(path):
        result = scan_manifest(path) if path.is_file() else scan_folder(path)
        if fmt == "json":
            typer.echo(json.dumps({"source": str(path), "volumes": [asdict(v) for v in result.volumes],
                                   "skipped": [{"path": p, "reason": r} for p, r in result.skipped]},
                                  indent=2))
            return
        for line in summary_lines(result):
            typer.echo(line)
        return
    facts = describe(path)
    if fmt == "json":
        typer.echo(json.dumps(facts, indent=2))
        return
    for key, value in facts.items():
        typer.echo(f"{key:>18}: {value}")


@app.command("scan")
def scan_cmd(
    folder: Path = typer.Argument(..., help="Folder of scans: NIfTI files, DICOM series (classic or "
                                  "enhanced, any layout), folders of PNG/TIFF slices."),
    out: Path = typer.Option(..., "--out", help="Manifest CSV to write (one row per volume)."),
    labels: str = typer.Option("none", "--labels", help="none (unlabelled: unconditional training) "
                               "or folders (first-level folders named healthy/benign/malignant)."),
    modality: str = typer.Option("", "--modality", help="Keep only these modalities, comma-separated "
                                 "(e.g. CT or MR); default: all."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out file."),
) -> None:
    """Find every volume under FOLDER and write a manifest for `genmed train --data`."""
    from genmed.data.scan import check_manifest_out, scan_folder, summary_lines, write_manifest

    check_manifest_out(out, overwrite=overwrite)  # before a scan that may take minutes
    keep = tuple(m.strip() for m in modality.split(",") if m.strip())
    result = scan_folder(folder.resolve(), manifest_dir=out.resolve().parent, labels=labels,
                         modalities=keep)
    path = write_manifest(result, out, overwrite=overwrite)
    result.folder = folder  # as the user wrote it
    for line in summary_lines(result):
        typer.echo(line)
    typer.echo(f"manifest: {path}")


@app.command("crop-kidneys")
def crop_kidneys_cmd(
    data: str = typer.Argument(..., help="'phantom', a manifest CSV or a folder written by `genmed data make`."),
    out: Path = typer.Option(..., "--out", help="Output folder (created; must be new or empty unless "
                             "--overwrite)."),
    size: int = typer.Option(96, "--size", help="Crop side in pixels at the source spacing "
                             "(96 px = 135 mm at 256 px over 360 mm)."),
    margin_mm: float = typer.Option(10.0, "--margin-mm", help="Context (mm) the kidney's box must keep "
                                    "inside the crop; z: slices within this distance are kept."),
    mask_column: str = typer.Option("mask_path", "--mask-column", help="Manifest column of the kidney "
                                    "masks (nonzero = kidney; e.g. a segmenter's predictions)."),
    lesion_column: str = typer.Option("", "--lesion-column", help="Manifest column of the lesion masks "
                                      "(value 2; default: --mask-column)."),
    patients: int = typer.Option(8, "--patients", help="phantom: number of patients."),
    slices_per_patient: int = typer.Option(8, "--slices-per-patient", help="phantom: slices per patient."),
    phantom_size: int = typer.Option(256, "--phantom-size", help="phantom: in-plane pixels (360 mm)."),
    three_d: bool = typer.Option(False, "--3d", help="phantom: crop volumes (depth = --phantom-size)."),
    noise_model: str = typer.Option("gaussian", "--noise-model", help="phantom: gaussian or radon."),
    seed: int = typer.Option(0, "--seed", min=0, help="phantom: random seed."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out folder."),
) -> None:
    """Crop each kidney (left and right separately) at native spacing: NIfTI crops + manifest.csv."""
    from genmed.data.crops import write_kidney_crops

    res = write_kidney_crops(data, out, size=size, margin_mm=margin_mm, mask_column=mask_column,
                             lesion_column=lesion_column or None, patients=patients,
                             slices_per_patient=slices_per_patient, phantom_size=phantom_size,
                             three_d=three_d, noise_model=noise_model, seed=seed, overwrite=overwrite)
    counts = ", ".join(f"{k} {v}" for k, v in res.label_counts.items())
    typer.echo(f"wrote {res.n_crops} kidney crops, {res.n_rows} slices ({counts}) to {res.out}")
    if res.n_truncated:
        typer.echo(f"warning: {res.n_truncated} kidney(s) plus margin did not fit in {size} px "
                   "(crops centred, kidney truncated; column `fits`)")
    typer.echo(f"manifest: {res.manifest}")
