"""`genmed eval ...`: evaluate image sets and mixture samples; train the domain extractor."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from genmed.fileio import check_output_dir, check_output_file

app = typer.Typer(help="Evaluate generated images (FID/KID, PRDC, diversity, memorisation) "
                  "and mode coverage on 2-D mixtures.", no_args_is_help=True)
# `genmed eval modes` (the mode-collapse experiment, which trains) moved to `genmed compare
# modes`; cli.py registers the deprecated alias here, since metrics/ does not import compare/.


@app.command("train-extractor")
def train_extractor_cmd(
    out: Path = typer.Option(Path("phantom_cnn_v1.safetensors"), help="Output .safetensors file."),
    data: str = typer.Option("phantom", "--data", help="Training data: 'phantom', a manifest CSV "
                             "or a folder (what `genmed train --data` takes); its training split "
                             "only, split by patient."),
    size: int = typer.Option(None, help="Input side in pixels, 16-512 (v2; default 64)."),
    steps: int = typer.Option(None, help="Optimiser steps (v2; default 1000)."),
    epochs: int = typer.Option(None, help="Epochs (v1 default 15; v2: instead of --steps)."),
    batch_size: int = typer.Option(None, "--batch-size", help="Batch size (v2; default 64)."),
    objective: str = typer.Option(None, help="v2: auto (labels: class loss + contrastive; "
                                  "none: contrastive), contrastive, supervised or both."),
    seed: int = typer.Option(0, min=0, help="Seed of the data (split) and the training."),
    n_patients: int = typer.Option(None, help="Phantom patients (8 slices each; v1 default 300)."),
    device: str = typer.Option(None, help="v2: auto, cpu or cuda."),
    precision: str = typer.Option(None, help="v2: fp32 (default), auto, bf16 or fp16."),
) -> None:
    """Train a domain feature extractor for `genmed eval images --extractor FILE`.

    With no option but --out/--seed/--n-patients/--epochs: the v1 phantom CNN (the shipped one
    is seed 0, defaults). With --data other than phantom, or any of --size, --steps,
    --batch-size, --objective, --device, --precision: v2, trained by the engine at --size on
    the data's training split (supervised where it has labels, SimCLR-contrastive otherwise)."""
    import torch

    from genmed.errors import UserError

    if out.suffix != ".safetensors":
        raise UserError(f"{out}: the extractor file must end in .safetensors")
    v2 = data != "phantom" or any(v is not None for v in (size, steps, batch_size, objective,
                                                          device, precision))
    if not v2:
        from genmed.metrics.extractor_train import ExtractorConfig, train_phantom_extractor

        check_output_file(out)
        torch.set_num_threads(1)  # the shipped weights were trained with one thread
        given = {k: v for k, v in (("n_patients", n_patients), ("epochs", epochs)) if v is not None}
        cfg = ExtractorConfig(seed=seed, **given)  # 0 is refused there, not read as the default
        typer.echo(json.dumps(train_phantom_extractor(str(out), cfg), indent=2))
        return
    from genmed.metrics.extractor_engine import DomainTrainConfig, train_domain_extractor

    if data != "phantom" and not Path(data).exists():
        raise UserError(f"{data}: no such file or folder (--data takes 'phantom', a manifest CSV "
                        "or a folder)")
    options = dict(size=size, steps=steps, epochs=epochs, batch_size=batch_size,
                   objective=objective, device=device, precision=precision, n_patients=n_patients)
    cfg = DomainTrainConfig(source=data, seed=seed, **{k: v for k, v in options.items() if v is not None})
    check_output_file(out)
    summary = train_domain_extractor(out, cfg)
    typer.echo(json.dumps(summary, indent=2))
    typer.echo(f"extractor {summary['name']} ({summary['weights_hash'][:12]}) trained on "
               f"{summary['modality']} ({summary['units']}) at {summary['size']} px: "
               f"genmed eval images REAL FAKE --extractor {out}")


@app.command("images")
def images_cmd(
    real: str = typer.Argument(..., help="Real images: 'phantom', an image set (folder of pictures, "
                               ".npy/.npz), or what `genmed train --data` takes (a manifest CSV, a "
                               "folder of scans, a MedMNIST .npz)."),
    fake: Path = typer.Argument(..., help="Generated images: a folder (what `genmed sample` writes) "
                                "or .npy/.npz file."),
    out: Path = typer.Option(..., "--out", help="Output folder for metrics.json."),
    train: Path = typer.Option(None, help="Training images for the memorisation audit "
                               "(default with 'phantom' or training data: its training split)."),
    real_split: str = typer.Option("test", "--real-split", help="Training data as REAL: the split "
                                   "to compare against (train, val, test or all), split by patient "
                                   "as `genmed train` splits it."),
    extractor: str = typer.Option("phantom-cnn", help="'phantom-cnn', a .safetensors file from "
                                  "`genmed eval train-extractor` (e.g. --data on your scans), or a "
                                  "TorchScript file."),
    n_boot: int = typer.Option(50, help="Bootstrap resamples."),
    k: int = typer.Option(5, "--k", help="Neighbours for precision/recall/density/coverage (each "
                          "set needs more than k images)."),
    seed: int = typer.Option(0, min=0, help="Seed of the resampling (and of the patient split)."),
) -> None:
    """Compute every image-set metric (with CIs) between REAL and FAKE; write OUT/metrics.json
    and OUT/report.html (real vs generated slices in the data's window, tables, warnings)."""
    import sys

    from genmed.errors import check_choice, check_positive, check_range
    from genmed.fileio import write_json
    from genmed.metrics.evaluate import EvalConfig, evaluate_images
    from genmed.metrics.imagesets import (data_source_sets, is_data_source, phantom_image_set,
                                          read_image_set, resize_to, sample_map,
                                          sample_spacing)
    from genmed.versions import versions

    check_output_dir(out, files=("metrics.json", "report.html", "real_vs_generated.png"))
    check_range("--n-boot", n_boot, 1, 100_000)
    check_positive("k", k)
    check_choice("--real-split", real_split, ("train", "val", "test", "all"))
    from genmed.metrics.features import load_extractor

    ext = load_extractor(extractor)  # a missing or corrupt file is refused before any image is read
    fake_x = read_image_set(fake)
    size = tuple(fake_x.shape[-2:])
    labels, summary = None, None
    train_x = read_image_set(train) if train is not None else None
    if real == "phantom":
        real_x, labels = phantom_image_set("test", size=size[0], seed=seed)
        if train_x is None:
            train_x, _ = phantom_image_set("train", size=size[0], seed=seed)
        data = {"source": "phantom", "modality": "CT", "phantom": True}
    elif is_data_source(real):
        spacing = sample_spacing(fake) if fake.is_dir() else None  # as the run was trained
        real_x, own_train, labels, summary = data_source_sets(real, size[0], real_split, seed,
                                                              spacing_mm=spacing)
        train_x = train_x if train_x is not None else own_train
        data = {"source": real, "modality": summary.get("modality"), "phantom": False,
                "split": real_split}
        from genmed.data.summary import summary_lines

        for line in summary_lines({**summary, "trained_on": real_split}, evaluation=True):
            typer.echo(line)
    else:
        real_x = read_image_set(real)
        data = {"source": real, "modality": None, "phantom": False}
    fake_map = sample_map(fake) if fake.is_dir() else None
    data["fake_modality"] = fake_map.modality if fake_map is not None else None
    real_x = resize_to(real_x, size)
    if train_x is not None:
        train_x = resize_to(train_x, size)
    result = evaluate_images(
        real_x, fake_x, extractor=ext, train=train_x, real_labels=labels,
        cfg=EvalConfig(n_boot=n_boot, k=k, seed=seed), data=data,
    )
    result["inputs"] = {"real": real, "fake": str(fake), "train": str(train) if train else None,
                        "real_split": real_split if summary else None}
    if summary:
        result["real_data"] = summary
    result["versions"] = versions()
    path = write_json(out / "metrics.json", result)
    from genmed.data.modality import CT_WINDOW
    from genmed.metrics.report import write_report

    report = write_report(out, result, real_x, fake_x, CT_WINDOW if real == "phantom" else fake_map)
    for warning in result["warnings"]:
        print(f"genmed: warning: {warning}", file=sys.stderr)
    q = result["quality"]
    typer.echo(f"FID {_num(q['fid']['value'])} [{_num(q['fid']['low'])}, {_num(q['fid']['high'])}]  "
               f"extractor {result['extractor']['name']} ({result['extractor']['weights_hash'][:12]})")
    typer.echo(str(path))
    typer.echo(str(report))


def _num(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


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
