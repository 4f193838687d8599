"""`genmed apps ...`: anomaly, anomaly-crops, denoise, translate, generate-from-mask,
generate-from-class, volumes3d.

Each command runs its phantom benchmark (`--quick`: tiny settings, seconds) and writes a metrics
JSON and PNG figure(s) under `--out`; `denoise --input FILE` denoises a user's scan instead,
`generate-from-mask --mask FILE` generates from a user's label map, and `generate-from-class`
draws slices of a lesion class through a trained layout model and a mask-conditioned model.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import typer

from genmed.errors import MAX_SEED
from genmed.fileio import check_output_dir

app = typer.Typer(help="Applications: anomaly detection, denoising, translation, generation "
                  "from a mask, 3D.", no_args_is_help=True)

OUT = typer.Option(..., "--out", help="Folder for the metrics JSON and figures.")
QUICK = typer.Option(False, "--quick", help="Tiny settings (seconds; used by the tests).")
SEED = typer.Option(0, "--seed", min=0, max=MAX_SEED, help="Seed of data, weights and noise.")
DEVICE = typer.Option("auto", "--device", help="auto (CUDA when present), cpu or cuda.")
PRECISION = typer.Option(None, "--precision",
                         help="Training numerics: auto, bf16, fp16 (CUDA) or fp32 (default: fp32; "
                              "volumes3d: auto).")


def _compute(device: str, precision: str | None, default: str = "fp32"):
    """The `genmed.train.Compute` of the --device / --precision options."""
    from genmed.train import Compute

    return Compute(device=device, precision=precision or default)


def _done(result: dict, out: Path) -> None:
    typer.echo(f"wrote {out}")
    typer.echo(json.dumps({k: v for k, v in result.items() if k != "config"}, default=str)[:600])


@app.command()
def anomaly(out: Path = OUT, quick: bool = QUICK, seed: int = SEED, device: str = DEVICE,
            precision: str = PRECISION,
            t_start: int = typer.Option(250, help="AnoDDPM noise level (of 1000 steps).")) -> None:
    """Healthy-only training; VAE / GAN / diffusion / intensity detectors; AUROC, AUPRC, Dice, AUPRO."""
    from genmed.apps.anomaly import AnomalyConfig, run_anomaly

    check_output_dir(out)

    cfg = (AnomalyConfig(size=16, n_train_patients=4, n_test_patients=8, vae_steps=8, gan_steps=8,
                         diffusion_steps=8, recon_steps=2, n_draws=1, n_boot=20, t_start=t_start,
                         seed=seed) if quick else AnomalyConfig(t_start=t_start, seed=seed))
    cfg = dataclasses.replace(cfg, compute=_compute(device, precision))
    _done(run_anomaly(cfg, out), out)


@app.command("anomaly-crops")
def anomaly_crops(out: Path = OUT, quick: bool = QUICK, seed: int = SEED, device: str = DEVICE,
                  precision: str = PRECISION) -> None:
    """Kidney crops at 1.41 mm (256-px slices): healthy-only training; intensity, VAE, GAN (D and
    inversion), AnoDDPM with Gaussian and simplex noise; AUROC, AUPRC, best Dice, AUPRO."""
    from genmed.apps.anomaly_crops import CropAnomalyConfig, quick_crop_anomaly_config, run_crop_anomaly

    check_output_dir(out)
    cfg = quick_crop_anomaly_config(seed=seed) if quick else CropAnomalyConfig(seed=seed)
    cfg = dataclasses.replace(cfg, compute=_compute(device, precision, cfg.compute.precision))
    _done(run_crop_anomaly(cfg, out), out)


@app.command()
def denoise(out: Path = OUT, quick: bool = QUICK, seed: int = SEED, device: str = DEVICE,
            precision: str = PRECISION,
            input: Path = typer.Option(None, "--input", help="A DICOM/NIfTI/PNG scan to denoise "
                                       "(no ground truth) instead of the phantom benchmark."),
            method: str = typer.Option("bm3d", help="Method for --input: nlm, bm3d, tv, wavelet."),
            noise_estimator: str = typer.Option("wavelet", "--noise-estimator", help="Noise SD for --input: "
                                                "wavelet (MAD; underestimates correlated CT noise) or mode "
                                                "(CT only: soft-tissue local-SD mode)."),
            clinical: bool = typer.Option(False, "--clinical", help="256 px, projection-domain low "
                                          "dose at 25% and 10% (with --quick: 128 px, tiny).")) -> None:
    """Low-dose denoising: diffusion, UNet, NLM, BM3D on the phantom; or a user's scan."""
    from genmed.apps.denoise import CLASSICAL, DenoiseConfig, clinical_denoise_config, denoise_file, run_denoise
    from genmed.errors import UserError, check_choice

    check_output_dir(out, files=("denoised.nii.gz", "denoise.png", "denoise.json"))
    check_choice("--method", method, CLASSICAL)  # also without --input: never silently ignored
    check_choice("--noise-estimator", noise_estimator, ("wavelet", "mode"))
    if input is not None:
        if clinical:
            raise UserError("--clinical sets the phantom benchmark; it does not apply to --input")
        _done(denoise_file(input, out, method, noise_estimator), out)
        return
    tiny = dict(n_train_patients=2, n_test_patients=2, unet_steps=8, diffusion_steps=8,
                sample_steps=2, n_boot=20, seed=seed)
    if clinical:
        cfg = (clinical_denoise_config(size=128, patch=32, unet_channels=(8, 16), diffusion_channels=(16, 32),
                                       methods=("noisy", "diffusion", "unet", "nlm", "tv"), **tiny)
               if quick else clinical_denoise_config(seed=seed))
    else:
        cfg = (DenoiseConfig(size=16, methods=("noisy", "diffusion", "unet", "nlm"), **tiny)
               if quick else DenoiseConfig(seed=seed))
    cfg = dataclasses.replace(cfg, compute=_compute(device, precision, cfg.compute.precision))
    _done(run_denoise(cfg, out), out)


@app.command()
def translate(out: Path = OUT, quick: bool = QUICK, seed: int = SEED, device: str = DEVICE,
              precision: str = PRECISION,
              clinical: bool = typer.Option(False, "--clinical", help="256 px, patch-trained residual "
                                            "UNet, pix2pix and conditional diffusion (with --quick: 64 px, tiny).")) -> None:
    """Non-contrast -> contrast phase: UNet L1, pix2pix, conditional diffusion, SDEdit."""
    from genmed.apps.translate import METHODS, TranslateConfig, clinical_translate_config, run_translate

    check_output_dir(out)
    tiny = dict(n_train_patients=2, n_test_patients=2, unet_steps=8, diffusion_steps=8,
                sample_steps=2, n_boot=20, seed=seed)
    if clinical:
        cfg = (clinical_translate_config(size=64, patch=32, unet_channels=(8, 16), diffusion_channels=(16, 32),
                                         methods=METHODS, **tiny)
               if quick else clinical_translate_config(seed=seed))
    else:
        cfg = TranslateConfig(size=16, **tiny) if quick else TranslateConfig(seed=seed)
    cfg = dataclasses.replace(cfg, compute=_compute(device, precision, cfg.compute.precision))
    _done(run_translate(cfg, out), out)


@app.command("generate-from-mask")
def generate_from_mask(
    out: Path = OUT, quick: bool = QUICK, seed: int = SEED, device: str = DEVICE,
    precision: str = PRECISION,
    mask: Path = typer.Option(None, "--mask", help="Label map file (0 air, 1 body, 2 kidney, "
                              "3 lesion) to generate from, with a freshly trained model or --model."),
    model_run: Path = typer.Option(None, "--model", help="Run folder of a trained mask-conditioned "
                                   "model (OUT/model of an earlier run, or the 256-px latent one of "
                                   "benchmarks/apps_generate_from_mask_256.py) instead of training."),
    reference: Path = typer.Option(None, "--reference", help="Image whose spacing the mask must share."),
    attributes: str = typer.Option("{}", "--attributes", help='JSON, e.g. {"kind": "malignant", '
                                   '"noise": "low-dose", "noise_hu": 70, "size_mm": 30}; noise_hu '
                                   '(scan noise SD, HU) needs a --model run with a fitted noise texture.'),
    noise_correlation: float = typer.Option(None, "--noise-correlation", help="A 3-D map with a 2-D "
                                            "model: correlation of adjacent slices' initial noise, 0-1 "
                                            "(1: one shared noise; default 0.98)."),
    map_guidance: float = typer.Option(None, "--map-guidance", help="Weight w >= 0 that steers each "
                                       "slice towards the map's kidneys and lesion, away from the same "
                                       "map without them (0: off; twice the sampling time). A 3-D map "
                                       "with a 2-D model: every slice (default 0.25). A map drawn whole "
                                       "(2-D, or 3-D with a 3-D model): maps with a lesion (default 0)."),
    map_guidance_healthy: float = typer.Option(None, "--map-guidance-healthy", help="A map drawn whole "
                                               "without a lesion: its own map-guidance weight (default "
                                               "0; with --map-guidance alone, its weight)."),
) -> None:
    """Generate CT slices from a label map + attributes (SPADE diffusion); check they obey."""
    from genmed.apps.generate_from_mask import (
        NOISE_TEXTURE, MaskGenConfig, encode, generate_pairs, load_mask, run_generate_from_mask,
        texture_of, train_mask_generator)
    from genmed.errors import UserError
    from genmed.models.mask_generation import check_noise_request
    from genmed.models.map_guidance import check_map_guidance, slice_map_guidance
    from genmed.models.slicewise import MAP_GUIDANCE, NOISE_CORRELATION, check_noise_correlation

    check_output_dir(out, files=(("generated.nii.gz", "generated.png", "generated.json") if mask is not None
                                 else ("generate_from_mask.json", "generate_from_mask.png")))
    if model_run is not None and mask is None:
        raise UserError("--model generates from a label map: give --mask FILE as well")
    rho = check_noise_correlation(NOISE_CORRELATION if noise_correlation is None else noise_correlation,
                                  "--noise-correlation")
    w_map = check_map_guidance(MAP_GUIDANCE if map_guidance is None else map_guidance, "--map-guidance")
    w_healthy = (None if map_guidance_healthy is None
                 else check_map_guidance(map_guidance_healthy, "--map-guidance-healthy"))
    cfg = (MaskGenConfig(size=16, n_train_patients=3, n_test_patients=2, diffusion_steps=8,
                         checker_steps=8, sample_steps=2, seed=seed)
           if quick else MaskGenConfig(seed=seed))
    cfg = dataclasses.replace(cfg, compute=_compute(device, precision))
    if mask is None:
        _done(run_generate_from_mask(cfg, out), out)
        return
    try:
        attrs = json.loads(attributes)
    except json.JSONDecodeError as exc:
        raise UserError(f"--attributes is not valid JSON ({exc.msg})") from None
    if not isinstance(attrs, dict):
        raise UserError("--attributes must be a JSON object")
    model = None
    if model_run is not None:
        from genmed.models.mask_generation import check_mask_model
        from genmed.train import load_run
        from genmed.train.precision import resolve_device

        model = check_mask_model(load_run(model_run, device=str(resolve_device(device)))[0], str(model_run))
    dims = model.config.spatial_dims if model else 2
    masks, spacing = load_mask(mask, reference, dims)
    # a volume for a 2-D model: drawn axial slice by axial slice (slicewise.py)
    volume = dims == 2 and len(masks) > 1
    if volume and w_healthy is not None:
        raise UserError("--map-guidance-healthy is for maps drawn whole; a volume drawn slice by slice "
                        "takes --map-guidance for every slice")
    if not volume:
        spacing = spacing[-dims:]  # a single slice of a 3-D file: its in-plane spacing
        # a map drawn whole: one weight with a lesion, another without (map_guidance.py)
        w_map, w_healthy = slice_map_guidance(map_guidance, w_healthy)
    # scan noise per dose level, fitted by benchmarks/apps_generate_from_mask_256.py
    texture = texture_of(model_run) if model_run is not None else None
    size = model.config.size if model else cfg.size
    if volume:  # fail fast, before any training or sampling
        from genmed.models.slicewise import slice_attributes

        encode(masks, slice_attributes(masks, attrs, spacing), size, None, 2)
    else:
        encode(masks, [attrs] * len(masks), size, spacing, dims)
    check_noise_request([attrs], texture, (size, size))
    from genmed.data.io import save_nifti
    from genmed.fileio import write_json

    if volume:
        from genmed.apps.generate_from_mask import generate_volume

        images = generate_volume(masks, attrs, model or train_mask_generator(cfg), steps=cfg.sample_steps,
                                 seed=seed, spacing_mm=spacing, texture=texture,
                                 noise_correlation=rho, map_guidance=w_map)[None]
        dims = 3  # written and drawn as one volume
    else:
        images = generate_pairs(masks, [attrs] * len(masks), model or train_mask_generator(cfg),
                                steps=cfg.sample_steps, seed=seed, spacing_mm=spacing, texture=texture,
                                map_guidance=w_map, map_guidance_healthy=w_healthy)
    save_nifti(out / "generated.nii.gz", images if dims == 2 else images[0], (1.0, *spacing)[-3:])
    if dims == 2:
        from genmed.data.transforms import ABDOMEN_RANGE_HU
        from genmed.fileio import write_png
        from genmed.report import image_grid

        lo, hi = ABDOMEN_RANGE_HU
        write_png(out / "generated.png", image_grid(images, vmin=lo, vmax=hi, upscale=4))
    else:
        from genmed.apps.volumes3d import orthogonal_figure
        from genmed.fileio import save_figure

        save_figure(orthogonal_figure(images, spacing), out / "generated.png")
    write_json(out / "generated.json", {"mask": str(mask), "attributes": attrs, "n": len(images),
                                        "slice_by_slice": volume,
                                        "noise_correlation": rho if volume else None,
                                        "map_guidance": w_map,
                                        "map_guidance_healthy": None if volume else w_healthy,
                                        "model": str(model_run) if model_run else "trained by this run",
                                        "scan_noise": str(model_run / NOISE_TEXTURE) if texture else None})
    typer.echo(f"wrote {out}")


@app.command("generate-from-class")
def generate_from_class(
    out: Path = OUT, seed: int = SEED, device: str = DEVICE,
    layout_run: Path = typer.Option(..., "--layout", help="Run folder of a trained layout model "
                                    "(benchmarks/layout_then_image.py --train-only)."),
    model_run: Path = typer.Option(..., "--model", help="Run folder of a trained mask-conditioned "
                                   "model at the slice size wanted (benchmarks/apps_generate_from_mask_256.py)."),
    kind: str = typer.Option(..., "--kind", help="Lesion class: healthy, benign or malignant."),
    n: int = typer.Option(8, "--n", min=1, max=256, help="Slices to draw."),
    noise: str = typer.Option("standard", "--noise", help="Dose: standard or low-dose."),
    spacing: float = typer.Option(None, "--spacing", min=0.01, max=100.0, help="In-plane spacing written "
                                  "to the NIfTI (mm; default: the phantom's 360 mm field of view / size)."),
    layout_guidance: float = typer.Option(1.0, "--layout-guidance", min=0.0, max=20.0,
                                          help="Classifier-free guidance of the layout model."),
    map_guidance: float = typer.Option(0.0, "--map-guidance", min=0.0, max=4.0, help="The image model's "
                                       "map guidance for maps with a lesion (0: off)."),
    map_guidance_healthy: float = typer.Option(0.5, "--map-guidance-healthy", min=0.0, max=4.0,
                                               help="Its map guidance for maps without a lesion."),
) -> None:
    """Draw slices of a lesion class: a layout model draws the label map, a mask-conditioned model
    the slice from it (brainSPADE, Fernandez et al. 2022)."""
    from genmed.apps.generate_from_mask import NOISE_TEXTURE, texture_of
    from genmed.data.conditions import NOISE_LEVELS
    from genmed.data.phantom import LABELS, PhantomConfig
    from genmed.errors import UserError, check_choice
    from genmed.models.layout import check_layout_model, generate_from_class as draw
    from genmed.models.mask_generation import check_mask_model, check_noise_request
    from genmed.train import load_run
    from genmed.train.precision import resolve_device

    check_output_dir(out, files=("generated.nii.gz", "layouts.nii.gz", "generated.png", "generated.json"))
    check_choice("--kind", kind, LABELS)
    check_choice("--noise", noise, NOISE_LEVELS)
    dev = str(resolve_device(device))
    layout = check_layout_model(load_run(layout_run, device=dev)[0].eval(), str(layout_run))
    model = check_mask_model(load_run(model_run, device=dev)[0].eval(), str(model_run))
    if model.config.spatial_dims != 2:
        raise UserError(f"{model_run}: a 3-D mask model; generate-from-class draws 2-D slices")
    texture = texture_of(model_run)
    size = model.config.size
    check_noise_request([{"noise": noise}], texture, (size, size))
    layouts, images = draw(layout, model, [LABELS.index(kind)] * n, noise=noise, seed=seed,
                           layout_guidance=layout_guidance, texture=texture, map_guidance=map_guidance,
                           map_guidance_healthy=map_guidance_healthy)
    from genmed.apps.common import to_hu
    from genmed.apps.generate_from_mask import layout_figure
    from genmed.data.io import save_nifti
    from genmed.fileio import save_figure, write_json

    hu = to_hu(images)
    spacing = spacing or PhantomConfig().fov_mm / size
    save_nifti(out / "generated.nii.gz", hu, (1.0, spacing, spacing))
    save_nifti(out / "layouts.nii.gz", layouts.maps, (1.0, spacing, spacing), modality="SEG",
               description="0 air 1 body 2 kidney 3 lesion")
    save_figure(layout_figure(layouts.maps[:8], hu[:8], f"{kind}, {noise} dose"), out / "generated.png")
    write_json(out / "generated.json", {"kind": kind, "noise": noise, "n": n, "seed": seed,
                                        "layout": str(layout_run), "model": str(model_run),
                                        "layout_guidance": layout_guidance, "map_guidance": map_guidance,
                                        "map_guidance_healthy": map_guidance_healthy,
                                        "layout_draws": layouts.draws.tolist(), "spacing_mm": spacing,
                                        "scan_noise": str(model_run / NOISE_TEXTURE) if texture else None})
    typer.echo(f"wrote {out}")


@app.command()
def volumes3d(out: Path = OUT, quick: bool = QUICK, seed: int = SEED, device: str = DEVICE,
              precision: str = PRECISION) -> None:
    """3D DDPM on 32^3 phantom volumes: samples, orthogonal slices, volumes/s, peak memory."""
    from genmed.apps.volumes3d import Volumes3DConfig, run_volumes3d

    check_output_dir(out)

    cfg = (Volumes3DConfig(size=16, n_patients=2, steps=3, batch_size=2, n_samples=1,
                           sample_steps=2, seed=seed) if quick else Volumes3DConfig(seed=seed))
    cfg = dataclasses.replace(cfg, compute=_compute(device, precision, default="auto"))
    _done(run_volumes3d(cfg, out), out)
