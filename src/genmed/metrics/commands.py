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
    extractor: str = typer.Option("phantom-cnn", help="'phantom-cnn', a .safetensors phantom CNN, "
                                  "or a TorchScript file."),
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
                                          read_image_set, resize_to, sample_map)
    from genmed.versions import versions

    check_output_dir(out, files=("metrics.json", "report.html", "real_vs_generated.png"))
    check_range("--n-boot", n_boot, 1, 100_000)
    check_positive("k", k)
    check_choice("--real-split", real_split, ("train", "val", "test", "all"))
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
        real_x, own_train, labels, summary = data_source_sets(real, size[0], real_split, seed)
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
        real_x, fake_x, extractor=extractor, train=train_x, real_labels=labels,
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
