"""`genmed pipeline ...`: kidney CT segmentation -> lesion classification (thin CLI layer)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from genmed.errors import check_choice, check_range

app = typer.Typer(
    help="Kidney CT pipeline: segmentation -> lesion classification, error analysis, "
    "augmentation study, few-label segmentation.",
    no_args_is_help=True,
)


def _log(msg: str) -> None:
    typer.echo(f"genmed pipeline: {msg}", err=True)


DEVICE = typer.Option("auto", "--device", help="auto (CUDA when present), cpu or cuda.")
PRECISION = typer.Option("fp32", "--precision", help="Training numerics: auto, bf16, fp16 (CUDA) or fp32.")


def _compute(device: str, precision: str):
    """The `genmed.train.Compute` of the --device / --precision options."""
    from genmed.train import Compute

    return Compute(device=device, precision=precision)


def _check_out(out: Path, what: str) -> None:
    """Refuse, before any work, an --out `what` that is a file, under a file or unwritable."""
    from genmed.fileio import check_output_dir

    check_output_dir(out, f"--out ({what})")


@app.command()
def train(
    data: str = typer.Option("phantom", "--data", help="'phantom' or a manifest CSV with mask_path."),
    out: Path = typer.Option(..., "--out", help="Run folder."),
    patients: Optional[int] = typer.Option(None, "--patients", help="Phantom patients, 8 slices each (default: 240; 1000 with --clinical)."),
    size: int = typer.Option(64, "--size", help="Slice size (pixels)."),
    seg_epochs: int = typer.Option(15, "--seg-epochs"),
    cls_epochs: int = typer.Option(30, "--cls-epochs"),
    seed: int = typer.Option(0, "--seed", min=0),
    seg_patch: int = typer.Option(48, "--seg-patch", help="Segmenter training patch and sliding-window roi (pixels)."),
    quick: bool = typer.Option(False, "--quick", help="Small settings (tests, demo)."),
    clinical: bool = typer.Option(False, "--clinical", help="Clinical resolution: 256-px slices, 1,250 patients, "
                                  "96-px seg patches (--size, --seg-* and --cls-epochs are ignored)."),
    device: str = DEVICE,
    precision: Optional[str] = typer.Option(None, "--precision", help="Training numerics: auto, bf16, fp16 (CUDA) "
                                            "or fp32 (default: fp32; auto with --clinical)."),
) -> None:
    """Train segmenter and classifier; predict dev and test into RUN/<split>/preds.csv, parts.csv."""
    import json

    from genmed.errors import UserError
    from genmed.pipeline.classifier import ClsConfig
    from genmed.pipeline.pipeline import PipelineConfig, clinical_config, quick_config, train_pipeline
    from genmed.pipeline.segmentation import SegConfig

    _check_out(out, "run folder")
    patients = patients if patients is not None else (1000 if clinical else 240)
    for name, value, low, high in (("--patients", patients, 4, 100_000), ("--size", size, 32, 512),
                                   ("--seg-epochs", seg_epochs, 1, 10_000), ("--cls-epochs", cls_epochs, 1, 10_000),
                                   ("--seg-patch", seg_patch, 16, 512)):
        check_range(name, value, low, high)  # with --quick too: a bad value is never ignored
    if quick and clinical:
        raise UserError("--quick and --clinical: choose one")
    compute = _compute(device, precision or ("auto" if clinical else "fp32"))
    if quick:
        cfg = quick_config(data=data, size=size, seed=seed, compute=compute)
    elif clinical:
        cfg = clinical_config(data=data, n_patients=patients, seed=seed, compute=compute)
    else:
        if seg_patch > size:
            raise UserError(f"--seg-patch {seg_patch} is larger than --size {size}")
        cfg = PipelineConfig(data=data, n_patients=patients, size=size, seed=seed,
                             seg=SegConfig(epochs=seg_epochs, patch=seg_patch), cls=ClsConfig(epochs=cls_epochs),
                             compute=compute)
    metrics = train_pipeline(cfg, out, log=_log)
    typer.echo(json.dumps({k: metrics[k] for k in ("test", "seconds") if k in metrics}, indent=2))


@app.command()
def segment3d(
    out: Path = typer.Option(..., "--out", help="Run folder (metrics.json, segmenter3d/)."),
    patients: int = typer.Option(80, "--patients", help="Phantom patients (one volume each)."),
    size: int = typer.Option(96, "--size", help="In-plane voxels (360 mm; isotropic voxels)."),
    depth: int = typer.Option(48, "--depth", help="Slices per volume."),
    steps: int = typer.Option(5000, "--steps", help="Optimiser steps (batch of 2 patches)."),
    seed: int = typer.Option(0, "--seed", min=0),
    quick: bool = typer.Option(False, "--quick", help="Tiny settings (tests, demo)."),
    resume: bool = typer.Option(False, "--resume", help="Continue OUT's interrupted run."),
    device: str = DEVICE,
    precision: str = PRECISION,
) -> None:
    """3D kidney segmentation of phantom volumes: OUT/metrics.json (test Dice, 95% CI), OUT/segmenter3d."""
    import json

    from genmed.pipeline.segmentation3d import Seg3DConfig, Seg3DRunConfig, quick_config3d, run_segmentation3d

    _check_out(out, "run folder")
    for name, value, low, high in (("--patients", patients, 3, 100_000), ("--size", size, 48, 512),
                                   ("--depth", depth, 48, 1024), ("--steps", steps, 1, 10**7)):
        check_range(name, value, low, high)  # with --quick too: a bad value is never ignored
    compute = _compute(device, precision)
    if quick:
        cfg = quick_config3d(seed=seed, compute=compute)
    else:
        cfg = Seg3DRunConfig(n_patients=patients, size=size, depth=depth, seed=seed,
                             seg=Seg3DConfig(steps=steps), compute=compute)
    metrics = run_segmentation3d(cfg, out, resume=resume, log=_log)
    typer.echo(json.dumps({k: metrics[k] for k in ("spacing_mm", "seconds")}
                          | {"kidney_dice": metrics["test"]["kidney_dice"]}, indent=2))


@app.command()
def predict(
    run: Path = typer.Argument(..., help="Run folder from `genmed pipeline train`."),
    out: Path = typer.Option(..., "--out", help="preds.csv to write (parts.csv and images/ go beside it)."),
    data: Optional[str] = typer.Option(None, "--data", help="'phantom' or a manifest CSV (default: the run's)."),
    split: str = typer.Option("dev", "--split", help="train, val, dev, test or all."),
) -> None:
    """Predict one split: preds.csv (id,y_true,y_pred,score,patient_id,image,...) and parts.csv."""
    from genmed.fileio import check_output_dir, check_output_file
    from genmed.pipeline.pipeline import predict as run_predict

    for path in (out, out.parent / "parts.csv"):
        check_output_file(path)
    check_output_dir(out.parent / "images")
    preds, parts = run_predict(run, out, data=data, split=split)
    typer.echo(f"wrote {preds} and {parts}")


@app.command()
def analyse(
    run: Path = typer.Argument(..., help="Run folder with dev/preds.csv and dev/parts.csv."),
    split: str = typer.Option("dev", "--split", help="Sub-folder of RUN holding preds.csv and parts.csv."),
    eyeball_errors: Optional[int] = typer.Option(None, "--eyeball-errors", help="Default: 100, or half the dev errors when fewer."),
    seed: int = typer.Option(0, "--seed", min=0),
) -> None:
    """Confusion matrix, automatic tags, category table, error by parts, recommendation, HTML page."""
    from genmed.pipeline.analyse import analyse as run_analyse

    if eyeball_errors is not None:
        check_range("--eyeball-errors", eyeball_errors, 1, 10**6)
    page, summary = run_analyse(run, split=split, eyeball_errors=eyeball_errors, seed=seed)
    for line in summary["recommendation"]:
        typer.echo(line)
    typer.echo(str(page))


@app.command("augment-study")
def augment_study(
    out: Path = typer.Option(..., "--out", help="Folder for the table, plot and JSON."),
    malignant_fraction: float = typer.Option(0.1, "--malignant-fraction", help="Malignant share of training lesions."),
    seeds: int = typer.Option(3, "--seeds", help="Seeds per arm (>= 3 for a CI)."),
    generator: list[str] = typer.Option([], "--generator", help="NAME=RUN_DIR of a class-conditional genmed train run (repeatable)."),
    train_generators: str = typer.Option("", "--train-generators", help="Families to train in the study, e.g. diffusion,gan,vae."),
    gen_steps: int = typer.Option(1500, "--gen-steps", help="Training steps per generator."),
    quick: bool = typer.Option(False, "--quick", help="Tiny settings (test suite)."),
    device: str = DEVICE,
    precision: str = PRECISION,
) -> None:
    """Classifier on imbalanced data: real vs classic augmentation vs synthetic slices."""
    from genmed.errors import UserError
    from genmed.pipeline.augment import AugmentConfig, augment_study as run_study, quick_augment_config
    from genmed.pipeline.synthetic import run_generator, train_generators as train_gens

    _check_out(out, "study folder")
    check_range("--seeds", seeds, 1, 100)  # each seed is a full arm of training
    check_range("--gen-steps", gen_steps, 1, 10**6)
    for fam in (f.strip() for f in train_generators.split(",") if f.strip()):
        check_choice("--train-generators", fam, ("diffusion", "gan", "vae"))
    compute = _compute(device, precision)
    cfg = (quick_augment_config if quick else AugmentConfig)(malignant_fraction=malignant_fraction,
                                                             seeds=tuple(range(seeds)), compute=compute)
    gens = {}
    for item in generator:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise UserError(f"--generator {item!r}: expected NAME=RUN_DIR")
        gens[name] = run_generator(path, cfg.size)
    fams = [f.strip() for f in train_generators.split(",") if f.strip()]
    if fams:
        from genmed.pipeline.augment import study_data

        train_cases, _ = study_data(cfg)
        gens.update(train_gens(fams, train_cases.image, train_cases.label, train_cases.patient_id, out,
                               size=min(cfg.size, 32), steps=gen_steps, seed=cfg.data_seed,
                               device=device))
    result = run_study(cfg, out, gens, log=_log)
    for row in result["table"]:
        typer.echo(f"{row['arm']:<16} malignant recall {row['malignant_recall']:.3f} "
                   f"balanced acc {row['balanced_accuracy']:.3f} AUROC {row['auroc_malignant']:.3f}")
    typer.echo(str(out / "augment_table.csv"))


@app.command("crop-study")
def crop_study(
    out: Path = typer.Option(..., "--out", help="Folder for generators, tables, plot and JSON."),
    malignant_crops: Optional[int] = typer.Option(None, "--malignant-crops", help="Malignant training crops kept, the scarce class (default 32; 6 with --quick)."),
    seeds: int = typer.Option(5, "--seeds", help="Classifier seeds per arm."),
    families: str = typer.Option("diffusion,gan,vae", "--families", help="Generators trained on the scarce crops: diffusion, ldm, gan, vae."),
    gen_steps: int = typer.Option(1000, "--gen-steps", help="Training steps per generator."),
    quick: bool = typer.Option(False, "--quick", help="Tiny settings (test suite)."),
    device: str = DEVICE,
    precision: str = typer.Option("auto", "--precision", help="Training numerics: auto, bf16, fp16 (CUDA) or fp32."),
) -> None:
    """Scarce malignant class on native 64-px kidney crops: real vs re-weighting vs classic vs synthetic."""
    from genmed.pipeline.crop_study import (GENERATOR_OPTIONS, CropStudyConfig, crop_study as run_study,
                                            quick_crop_study_config)

    _check_out(out, "study folder")
    if malignant_crops is not None:
        check_range("--malignant-crops", malignant_crops, 2, 10**6)
    check_range("--seeds", seeds, 1, 100)
    check_range("--gen-steps", gen_steps, 1, 10**6)
    fams = tuple(f.strip() for f in families.split(",") if f.strip())
    for fam in fams:
        check_choice("--families", fam, tuple(GENERATOR_OPTIONS))
    make = quick_crop_study_config if quick else CropStudyConfig
    given = {"malignant_crops": malignant_crops} if malignant_crops is not None else {}
    if not quick:
        given["gen_steps"] = gen_steps
    cfg = make(seeds=tuple(range(seeds)), families=fams, compute=_compute(device, precision), **given)
    result = run_study(cfg, out, log=_log)
    corrected = {row["arm"]: row for row in result["prior_corrected"]}
    for row in result["table"]:
        typer.echo(f"{row['arm']:<14} malignant recall {row['malignant_recall']:.3f} "
                   f"(vs real {row['recall_diff']:+.3f}, 95% CI {row['recall_diff_lo']:+.3f} to {row['recall_diff_hi']:+.3f}); "
                   f"prior-corrected {corrected[row['arm']]['malignant_recall']:.3f}")
    typer.echo(str(out / "crop_table.csv"))


@app.command("few-labels")
def few_labels(
    out: Path = typer.Option(..., "--out", help="Folder for the table and JSON."),
    fraction: float = typer.Option(0.1, "--fraction", help="Fraction of training patients with masks."),
    seeds: int = typer.Option(3, "--seeds"),
    gen_steps: int = typer.Option(300, "--gen-steps", help="Mask-conditioned diffusion training steps."),
    quick: bool = typer.Option(False, "--quick", help="Tiny settings (test suite)."),
    device: str = DEVICE,
    precision: str = PRECISION,
) -> None:
    """Segmentation with few masks: supervised, + pseudo-labels, + mask-generated pairs; Dice, 95% CI."""
    from genmed.pipeline.fewlabels import FewLabelsConfig, few_labels_study, quick_few_labels_config

    _check_out(out, "study folder")
    check_range("--seeds", seeds, 1, 100)  # each seed is a full arm of training
    check_range("--gen-steps", gen_steps, 1, 10**6)
    compute = _compute(device, precision)
    if quick:
        cfg = quick_few_labels_config(label_fraction=fraction, seeds=tuple(range(seeds)),
                                      compute=compute)
    else:
        cfg = FewLabelsConfig(label_fraction=fraction, seeds=tuple(range(seeds)), gen_steps=gen_steps,
                              compute=compute)
    result = few_labels_study(cfg, out, log=_log)
    for row in result["table"]:
        typer.echo(f"{row['arm']:<14} Dice {row['dice']:.3f} (95% CI {row['dice_lo']:.3f}-{row['dice_hi']:.3f})")
