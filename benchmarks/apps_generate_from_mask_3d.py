"""Generation of CT volumes from a 3-D label map plus attributes through latent diffusion
(issue 16, 3D).

The 3-D form of `apps_generate_from_mask_256.py`, trained here from scratch in two stages
through the engine (`genmed.train.fit`):
1. a 3-D KL autoencoder (MONAI AutoencoderKL, 4x per axis, 3 latent channels; Rombach et al.
   2022), or the one of an earlier run given with `--autoencoder RUN`;
2. a 3-D latent UNet that takes the one-hot condition map (0 air, 1 body, 2 kidney, 3 lesion),
   area-averaged onto the latent grid and concatenated with the latents, and the attribute pair
   kind x dose as a class (label dropout 0.1, classifier-free guidance).
Data: phantom volumes (`make_volumes`), a lesion of 12-48 mm in 90% of patients, 30% low-dose
scans. The autoencoder drops scan noise, so each requested dose level's noise is drawn after
decoding, axial slice by axial slice, from the noise power spectrum of the autoencoder's
residuals on other patients' volumes, differenced between adjacent slices so that its smooth
structure error cancels (`fit_scan_noise`, saved as OUT_RUN/noise_texture.npz).

Checks on held-out patients (another phantom seed), each also run on the real volumes with the
same maps: a 2-D segmenter and a lesion-kind classifier trained on the real training volumes'
axial slices read every axial slice of the generated volumes (`check_conditions`): kidney and
lesion Dice against the map (pooled over voxels), lesion-kind accuracy per slice (a slice
without lesion pixels is "healthy"; also over the lesion slices alone, where always answering
"healthy" scores 0), and noise SD per requested dose level (soft-tissue
local-SD mode at the in-plane spacing). The same checks on stage one's reconstructions of the
test volumes give the best stage two could reach. `latent_checks` records whether stage two
stays on the autoencoder's latent manifold (the eps-prediction pilot did not; `--prediction v`
is the default) and whether it reads the map (its x0 error with another volume's map).
Targets (issue 16): Dice and kind accuracy >= 0.9x the real volumes', noise within 20%.
The kidney Dice ratio carries a 95% CI from a paired bootstrap over the test volumes
(`kidney_ratio_ci`; with 8 volumes it is wide).

    PYTHONPATH=src python benchmarks/apps_generate_from_mask_3d.py [--size 128] [--steps N] ...

`--slicewise` takes the 2.5-D route instead (`genmed.models.slicewise`): both stages are 2-D and
train on the training volumes' axial slices (a slice's kind is the volume's where it holds
lesion pixels, else healthy); each test volume is drawn slice by slice with DDIM
(`--sample-steps`) from initial noises whose adjacent slices correlate by `--noise-correlation`
(1: one shared noise, the runs before 2026-12-05 session 37). The 3-D stage one was what lost
the kidneys (its reconstructions: kidney Dice 0.11 against 0.89 real), and a 2-D autoencoder
compresses in-plane only. The JSON's
`through_plane_difference_hu` (mean |difference| of adjacent axial slices in body and kidneys)
says how smoothly the volumes run from slice to slice, against the real noise-free volumes.
`--stage-one-only` trains stage one into OUT_RUN/autoencoder and stops (pass it back with
`--autoencoder`). `--readers DIR` keeps the trained readers in DIR and reuses them in later
evaluations with the same data and `--checker-steps` (a 128^3 pair takes about 7 minutes).

The trained model's folder (`--out-run`) then generates from a user's 3-D map:
`genmed apps generate-from-mask --mask MAP.nii.gz --model RUN --attributes '{"kind": "benign"}'`.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

from genmed.data.augment import AUGMENTS

ROOT = Path(__file__).resolve().parents[1]


def volumes(n_patients: int, size: int, seed: int):
    """Phantom volumes (size^3, 3 mm between slices) for the generator: a 12-48 mm lesion in 90%
    of patients, 30% low-dose."""
    from genmed.data.phantom import PhantomConfig, make_volumes

    cfg = PhantomConfig(size=size, lesion_prob=0.9, noisy_fraction=0.3,
                        lesion_diameter_mm=(12.0, 48.0))
    return make_volumes(n_patients, cfg, seed)


def as_slices(v) -> dict:
    """The axial slices of volumes `v`: HU images, condition maps, kinds, dose flags and each
    slice's attributes (the volume's kind where the slice holds lesion pixels, else healthy)."""
    from genmed.data.conditions import NOISE_LEVELS, condition_maps
    from genmed.data.phantom import LABELS

    n, d = v.slice_label.shape
    hw = v.image.shape[-2:]
    kinds, noisy = v.slice_label.reshape(-1), np.repeat(v.noisy, d)
    return {"image": v.image.reshape(n * d, *hw), "maps": condition_maps(v).reshape(n * d, *hw),
            "kinds": kinds, "noisy": noisy,
            "attributes": [{"kind": LABELS[k], "noise": NOISE_LEVELS[int(q)]} for k, q in zip(kinds, noisy)]}


def train_stages(args, tr, x: np.ndarray, device: str, precision: str) -> dict[str, float]:
    """Stage one (or the autoencoder of `--autoencoder`) and stage two into `--out-run`, on the
    training volumes `tr` (images `x` in [-1, 1]); their wall times (s)."""
    from genmed.data.conditions import attributes_of, condition_maps, encode
    from genmed.models import build_model
    from genmed.models.mask_generation import mask_ldm
    from genmed.train import DictDataset, fit, load_run

    def ints(text: str) -> tuple[int, ...]:
        return tuple(int(v) for v in text.split(","))

    timing: dict[str, float] = {}
    torch.manual_seed(args.seed)
    dims = 2 if args.slicewise else 3
    if args.slicewise:  # the axial slices are the training images of both 2-D stages
        tr, x = as_slices(tr), x.reshape(-1, 1, *x.shape[-2:])
    if args.autoencoder is None:
        t0 = time.perf_counter()
        adv = {} if args.ae_adv_weight is None else {"adv_weight": args.ae_adv_weight}
        ae = build_model("autoencoder", spatial_dims=dims, size=x.shape[-1], channels=ints(args.ae_channels),
                         latent_channels=args.latent_channels, train_crop=args.crop,
                         adv_warmup_steps=args.ae_steps // 5, **adv)
        ae = fit(ae, DictDataset(image=x), steps=args.ae_steps, batch_size=args.batch, seed=args.seed,
                 out=args.out_run / "autoencoder", device=device, precision=precision)
        timing["stage_one_s"] = round(time.perf_counter() - t0, 1)
        ae_run = str(args.out_run / "autoencoder")
        if args.stage_one_only:
            return timing
    else:
        ae, ae_run = load_run(args.autoencoder, device=device)[0], str(args.autoencoder)
    ae.eval()

    if args.slicewise:
        cond, ids = encode(tr["maps"], tr["attributes"], x.shape[-1], spatial_dims=2)
    else:
        cond, ids = encode(condition_maps(tr), attributes_of(tr), x.shape[-1], spatial_dims=3)
    t0 = time.perf_counter()
    weights = {} if args.cond_loss_weights is None else {"cond_loss_weights": (0.0, *args.cond_loss_weights)}
    model = mask_ldm(ae, x[:64 if args.slicewise else 8], autoencoder_run=ae_run,
                     generator=torch.Generator().manual_seed(args.seed), channels=ints(args.unet_channels),
                     prediction=args.prediction, **weights)
    fit(model, DictDataset(image=x, cond=cond, label=ids), steps=args.steps, batch_size=args.batch,
        lr=args.lr, seed=args.seed, out=args.out_run, device=device, precision=precision)
    timing["stage_two_s"] = round(time.perf_counter() - t0, 1)
    unit = "slices" if args.slicewise else "volumes"
    timing[f"stage_two_{unit}_per_s"] = round(args.steps * args.batch / timing["stage_two_s"], 3)
    return timing


def figure(path: Path, maps: np.ndarray, real: np.ndarray, fake: np.ndarray, attrs: list[dict],
           spacing: tuple[float, float, float], method: str = "3-D latent diffusion") -> None:
    """For the two test volumes with the largest lesions: condition map, real and generated,
    in the three planes through the lesion's centre; mm axes, superior up, W400/L40 HU."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genmed.apps.generate_from_mask import map_and_hu_colorbars, map_style
    from genmed.data.transforms import ABDOMEN_RANGE_HU
    from genmed.fileio import save_figure

    from genmed.report.planes import orthogonal_planes

    lo, hi = ABDOMEN_RANGE_HU
    sz, sy, sx = spacing
    d, h, w = maps.shape[1:]
    cmap, norm = map_style()
    picks = np.argsort(-(maps == 3).sum((1, 2, 3)))[:2]
    fig, ax = plt.subplots(3 * len(picks), 3, figsize=(11, 3.3 * 3 * len(picks)), squeeze=False,
                           layout="constrained")
    for i, k in enumerate(picks):
        where = np.argwhere(maps[k] == 3)
        centre = tuple(int(c) for c in (where.mean(0) if len(where) else np.array(maps[k].shape) // 2))
        for r, (vol, what) in enumerate(((maps[k], "condition map"), (real[k], "real (held out)"),
                                         (fake[k], "generated"))):
            row = 3 * i + r
            for c, (img, plane, ext, origin) in enumerate(orthogonal_planes(vol, spacing, centre)):
                if r == 0:
                    im_map = ax[row, c].imshow(img, cmap=cmap, norm=norm, interpolation="nearest",
                                               extent=ext, origin=origin)
                else:
                    im_hu = ax[row, c].imshow(img, cmap="gray", vmin=lo, vmax=hi, extent=ext, origin=origin)
                ax[row, c].set_title(f"{what}: {plane}" + (f" (requested {attrs[k]['kind']}, {attrs[k]['noise']})"
                                                          if r == 0 and c == 0 else ""), fontsize=9)
                ax[row, c].set_xlabel("mm", fontsize=8)
                ax[row, c].set_ylabel("mm", fontsize=8)
                ax[row, c].tick_params(labelsize=7)
    map_and_hu_colorbars(fig, im_map, ax[0], im_hu, ax[1:].ravel(), fraction=0.03)
    fig.suptitle(f"{method} from a label map + attributes, {d} x {h} x {w} voxels "
                 f"({sz:.2f} x {sy:.2f} x {sx:.2f} mm); planes through the lesion centre, superior up",
                 fontsize=11)
    save_figure(fig, path, dpi=72)


@torch.no_grad()
def latent_checks(model, x: torch.Tensor, cond: torch.Tensor, ids: torch.Tensor, seed: int,
                  times=(10, 100, 400, 600, 800, 950, 999)) -> dict:
    """Whether stage two stays on the autoencoder's latent manifold, on held-out volumes `x`
    (N, 1, D, H, W) in [-1, 1] with their maps and attribute ids: the RMS error of the latent
    x0 the network implies at each noise level t (eps: x0 = (z_t - sqrt(1 - ab) eps) /
    sqrt(ab); v: sqrt(ab) z_t - sqrt(1 - ab) v), and the SD of sampled latents (the default
    sampler) against that of the posterior samples stage two trains on (about 1 by the scale
    factor) and of the posterior means (lower by the posterior's own spread)."""
    from genmed.models.base import device_of
    from genmed.models.denoiser import eps_to_x0

    d, dev = model.diffusion, device_of(model)
    z = model.encode(x.to(dev), sample=False)
    posterior = model.encode(x.to(dev), torch.Generator(dev).manual_seed(seed))
    lc = model.latent_cond(cond.to(dev), len(x))

    def x0_rmse(image_cond: torch.Tensor) -> dict[str, float]:
        den, g = d.denoiser(image_cond=image_cond), torch.Generator(dev).manual_seed(seed)
        rmse = {}
        for t in times:
            tt = torch.full((len(z),), t, device=dev)
            zt = d.q_sample(z, tt, torch.randn(z.shape, generator=g, device=dev))
            x0 = eps_to_x0(zt, den(zt, tt, cond=ids.to(dev)), d.alpha_bar[t])
            rmse[str(t)] = round(float((x0 - z).pow(2).mean().sqrt()), 4)
        return rmse

    sampled = d.sample(len(z), cond=ids.to(dev), generator=torch.Generator(dev).manual_seed(seed), image_cond=lc)
    # the same noise with each volume given the next volume's map: a model that reads the map
    # does worse with it (the 32^3 pilot: eps-MSE 0.043 with the true map, 0.047 with another)
    return {"prediction": model.config.prediction, "x0_rmse_by_t": x0_rmse(lc),
            "x0_rmse_by_t_with_another_volumes_map": x0_rmse(lc.roll(1, 0)),
            "encoded_latent_sd": round(float(posterior.std()), 3),
            "encoded_posterior_mean_sd": round(float(z.std()), 3), "sampled_latent_sd": round(float(sampled.std()), 3)}


def through_plane(volumes_hu: np.ndarray, maps: np.ndarray) -> dict[str, float]:
    """Mean |difference| (HU) between adjacent axial slices of volumes (N, D, H, W), over the
    voxels inside the body, and inside the kidneys, in both slices of the map (N, D, H, W): how
    smoothly a volume runs from slice to slice. Independent scan noise of SD s alone gives
    2 s / sqrt(pi), so compare noise-free volumes with noise-free ones."""
    diff = np.abs(np.diff(np.asarray(volumes_hu, np.float64), axis=1))
    out = {}
    for name, region in (("body", maps > 0), ("kidneys", maps >= 2)):
        both = region[:, 1:] & region[:, :-1]
        out[name] = round(float(diff[both].mean()), 2)
    return out


def kidney_ratio_ci(gen: dict, real: dict) -> dict:
    """95% CI of pooled kidney Dice generated / real: a paired percentile bootstrap over the test
    volumes (each resample takes whole volumes, generated and real alike; 2,000 resamples)."""
    from genmed.metrics.stats import bootstrap_ci

    g, r = (np.asarray(c["kidney_overlap_by_group"], np.float64) for c in (gen, real))

    def pooled_ratio(g: np.ndarray, r: np.ndarray) -> float:
        return (g[:, 0].sum() / g[:, 1].sum()) / (r[:, 0].sum() / r[:, 1].sum())

    by_volume = [round(float((gv[0] / gv[1]) / (rv[0] / rv[1])), 4) for gv, rv in zip(g, r)]
    return bootstrap_ci(pooled_ratio, g, r, groups=np.arange(len(g)), n_boot=2000).interval() | {
        "by_volume": by_volume}


def reader_settings(args) -> dict:
    """What the readers' training depends on."""
    return {"size": args.size, "patients": args.patients, "checker_steps": args.checker_steps, "seed": args.seed}


def kept_readers_folder(args, augment: str) -> Path | None:
    """`--readers` DIR/augment where an earlier run kept finished readers, or None. Exits
    with status 2 where they were trained with other settings (checked before any work)."""
    where = None if args.readers is None else args.readers / augment
    if where is None or not (where / "readers.json").is_file():
        return None
    kept = json.loads((where / "readers.json").read_text())
    if kept != reader_settings(args):
        print(f"error: {where} holds readers trained with {kept}, not {reader_settings(args)}", file=sys.stderr)
        raise SystemExit(2)
    return where


def kept_readers(args, augment: str, device: str):
    """The segmenter and classifier trained with `augment` that an earlier run kept, or None."""
    from genmed.train import load_run

    where = kept_readers_folder(args, augment)
    return None if where is None else tuple(load_run(where / n, device=device)[0] for n in ("segmenter", "classifier"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64, help="voxels per in-plane side (360 mm)")
    ap.add_argument("--patients", type=int, default=48, help="training volumes")
    ap.add_argument("--test-patients", type=int, default=8)
    ap.add_argument("--noise-patients", type=int, default=6, help="volumes the scan noise is fitted on")
    ap.add_argument("--autoencoder", type=Path, help="a trained 3-D autoencoder run (skip stage one)")
    ap.add_argument("--ae-steps", type=int, default=600)
    ap.add_argument("--ae-channels", default="16,32,32")
    ap.add_argument("--latent-channels", type=int, default=3)
    ap.add_argument("--ae-adv-weight", type=float, help="stage one's adversarial weight (default: the recipe's)")
    ap.add_argument("--slicewise", action="store_true",
                    help="2-D stages on axial slices; volumes drawn slice by slice from one shared noise")
    ap.add_argument("--stage-one-only", action="store_true", help="train stage one into OUT_RUN/autoencoder and stop")
    ap.add_argument("--crop", type=int, default=0, help="stage one trains on random crops of this side (0: whole)")
    ap.add_argument("--steps", type=int, default=2000, help="stage-two steps")
    ap.add_argument("--unet-channels", default="32,64,64")
    ap.add_argument("--prediction", default="v", choices=("eps", "v"),
                    help="latent UNet target (Salimans & Ho 2022; eps samples leave the latent manifold)")
    ap.add_argument("--cond-loss-weights", type=float, nargs=3, metavar=("B", "K", "L"),
                    help="weight the latent loss by the map's body, kidney and lesion shares (air 0)")
    ap.add_argument("--sample-steps", type=int, default=50, help="DDIM steps of --slicewise sampling")
    ap.add_argument("--noise-correlation", type=float,
                    help="--slicewise: correlation of adjacent slices' initial noise (1: one shared noise, "
                         "0: independent; between: an AR(1) process along z, `slice_noise`; "
                         "default: slicewise.NOISE_CORRELATION)")
    ap.add_argument("--independent-noise", action="store_true", help="--slicewise: --noise-correlation 0")
    ap.add_argument("--map-guidance", type=float,
                    help="--slicewise: weight w of map guidance (away from the organ-free map, "
                         "`models/map_guidance.py`; 0: off; default: slicewise.MAP_GUIDANCE)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--checker-steps", type=int, default=600)
    ap.add_argument("--checker-augment", default="none", choices=AUGMENTS,
                    help="the readers' training augmentation; 'quality' (blur, noise, low resolution) reads "
                         "smooth images as well as noisy ones. Not 'none': the JSON also has the plain readers'")
    ap.add_argument("--readers", type=Path,
                    help="keep the trained readers in this folder, and reuse those an earlier run kept there")
    ap.add_argument("--guidance", type=float, default=1.0)
    ap.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out-run", type=Path, default=ROOT / "runs" / "bench_mask_ldm_3d")
    ap.add_argument("--run", type=Path, help="a trained 3-D mask ldm's run folder (skip both stages)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "apps_generate_from_mask_3d.json")
    ap.add_argument("--figure", type=Path, default=ROOT / "docs" / "img" / "generate_from_mask_3d.png")
    args = ap.parse_args()
    from genmed.errors import UserError
    from genmed.models.map_guidance import check_map_guidance
    from genmed.models.slicewise import MAP_GUIDANCE, NOISE_CORRELATION, check_noise_correlation

    if args.independent_noise:
        args.noise_correlation = 0.0
    try:  # the library's own range checks, as a usage error
        args.noise_correlation = check_noise_correlation(
            NOISE_CORRELATION if args.noise_correlation is None else args.noise_correlation, "--noise-correlation")
        args.map_guidance = check_map_guidance(MAP_GUIDANCE if args.map_guidance is None else args.map_guidance,
                                               "--map-guidance")
    except UserError as exc:
        ap.error(str(exc))
    torch.set_num_threads(args.threads)

    from genmed.apps.common import to_hu, to_unit
    from genmed.apps.generate_from_mask import check_conditions, train_checkers
    from genmed.data.conditions import attributes_of, condition_maps, encode
    from genmed.models.mask_generation import add_scan_noise, fit_scan_noise
    from genmed.models.slicewise import sample_volume_slicewise
    from genmed.train import load_run
    from genmed.train.fitting import Compute
    from genmed.train.precision import resolve_numerics
    from genmed.versions import machine

    def peak_rss_mb() -> int:
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)

    augments = tuple(dict.fromkeys((args.checker_augment, "none")))  # the readers trained below
    for aug in augments:
        kept_readers_folder(args, aug)  # refuse mismatched kept readers before any work
    numerics = resolve_numerics(args.device, args.precision)
    device, precision = str(numerics.device), numerics.precision
    start = time.perf_counter()
    tr = volumes(args.patients, args.size, args.seed)
    spacing = tuple(float(s) for s in tr.spacing_mm)
    x = to_unit(tr.image)
    timing: dict[str, float] = {"render_s": round(time.perf_counter() - start, 1)}

    run_dir = args.run or args.out_run
    if args.run is None:
        timing |= train_stages(args, tr, x, device, precision)
        if args.stage_one_only:
            print(json.dumps(timing))
            return
    model, _ = load_run(run_dir, device=device)
    model.eval()

    # readers: 2-D segmenter and kind classifier on the real training volumes' axial slices
    torch.manual_seed(args.seed)  # their initialisation: the same with or without --run
    t0 = time.perf_counter()
    s = as_slices(tr)
    readers = {}
    for aug in augments:
        readers[aug] = kept_readers(args, aug, device)
        if readers[aug] is None:
            torch.manual_seed(args.seed)
            where = None if args.readers is None else args.readers / aug
            readers[aug] = train_checkers(s["image"], s["maps"], s["kinds"], args.checker_steps,
                                          Compute(device=device, precision=precision), args.seed, augment=aug,
                                          out=where)
            if where is not None:  # written last: a folder without it holds no finished readers
                (where / "readers.json").write_text(json.dumps(reader_settings(args)) + "\n")
    timing["checkers_s"] = round(time.perf_counter() - t0, 1)
    del tr, x, s

    te = volumes(args.test_patients, args.size, args.seed + 1000)
    maps, attrs = condition_maps(te), attributes_of(te, noise_hu=True)
    t0 = time.perf_counter()
    if args.slicewise:
        flat_te = as_slices(te)
        tcond, tids = encode(flat_te["maps"], flat_te["attributes"], maps.shape[-1], spatial_dims=2)
        plain = torch.cat([sample_volume_slicewise(model, m, a, steps=args.sample_steps, seed=args.seed + k,
                                                   guidance=args.guidance, noise_correlation=args.noise_correlation,
                                                   map_guidance=args.map_guidance)
                           for k, (m, a) in enumerate(zip(maps, attrs))])
        timing["sample_s_per_volume"] = round((time.perf_counter() - t0) / len(plain), 2)
        every = slice(None, None, 8)  # 128 of the 1,024 test slices
        latent = latent_checks(model, to_unit(flat_te["image"])[every], tcond[every], tids[every], args.seed)
    else:
        tcond, tids = encode(maps, attrs, maps.shape[-1], spatial_dims=3)
        g = torch.Generator(device).manual_seed(args.seed)
        with torch.no_grad():
            plain = torch.cat([model.sample(1, cond=i.to(device), image_cond=c.to(device), generator=g,
                                            guidance=args.guidance).cpu()
                               for c, i in zip(tcond.split(1), tids.split(1))])
        timing["sample_s_per_volume"] = round((time.perf_counter() - t0) / len(plain), 2)
        latent = latent_checks(model, to_unit(te.image), tcond, tids, args.seed)
    noise = volumes(args.noise_patients, args.size, args.seed + 2000)
    texture = fit_scan_noise(model, to_unit(noise.image), [a["noise"] for a in attributes_of(noise)],
                             body=condition_maps(noise) > 0, batch=16 if args.slicewise else 1,
                             noise_hu=noise.noise_hu)
    texture.save(run_dir / "noise_texture.npz")
    fake = to_hu(add_scan_noise(plain, attrs, texture, args.seed, body=maps > 0))

    n, d = te.slice_label.shape
    flat = as_slices(te)

    def checks(images_hu: np.ndarray, reader: str = args.checker_augment) -> dict:
        return check_conditions(images_hu.reshape(n * d, *images_hu.shape[-2:]), flat["maps"], flat["kinds"],
                                flat["noisy"], *readers[reader], spacing_mm=spacing[-1],
                                groups=np.repeat(np.arange(n), d))

    gen, real, without = checks(fake), checks(te.image), checks(to_hu(plain))
    with torch.no_grad():  # stage one alone: the best stage two could reach
        if args.slicewise:
            recon = torch.cat([model.autoencoder.reconstruct(v.to(device)).cpu()
                               for v in to_unit(flat_te["image"]).split(32)]).reshape(plain.shape)
        else:
            recon = torch.cat([model.autoencoder.reconstruct(v.to(device)).cpu() for v in to_unit(te.image).split(1)])
    reconstructed = checks(to_hu(recon))
    plain_readers = {} if args.checker_augment == "none" else {"readers_without_augmentation": {
        name: {"kidney_dice": checks(im, "none")["dice"]["kidney"]}
        for name, im in (("generated", fake), ("real", te.image), ("generated_without_scan_noise", to_hu(plain)),
                         ("reconstructed_by_stage_one", to_hu(recon)))}}
    coherence = {"generated_without_scan_noise": through_plane(to_hu(plain), maps),
                 "reconstructed_by_stage_one": through_plane(to_hu(recon), maps),
                 "real_noise_free": through_plane(te.clean, maps), "real": through_plane(te.image, maps)}
    def ratio(g: float | None, r: float | None) -> float | None:  # None where the real reading is ~0
        return g / r if g is not None and r is not None and r > 0.05 else None

    ratios = {"kidney_dice": ratio(gen["dice"]["kidney"], real["dice"]["kidney"]),
              "lesion_dice": ratio(gen["dice"]["lesion"], real["dice"]["lesion"]),
              "kind_accuracy": ratio(gen["kind_accuracy"], real["kind_accuracy"]),
              "kind_accuracy_lesion_slices": ratio(gen["kind_accuracy_lesion_slices"],
                                                   real["kind_accuracy_lesion_slices"])}
    ratios |= {f"noise_sd_{lv}": ratio(gen["noise_sd_hu"][lv], real["noise_sd_hu"][lv])
               for lv in real["noise_sd_hu"]}
    ratios["kidney_dice_ci95"] = kidney_ratio_ci(gen, real)
    figure(args.figure, maps, te.image, fake, attrs, spacing,
           f"2-D latent diffusion slice by slice (noise correlation {args.noise_correlation:g} between slices"
           + (f", map guidance {args.map_guidance:g})," if args.map_guidance else "),")
           if args.slicewise
           else "3-D latent diffusion")
    result = {
        "benchmark": "apps_generate_from_mask_3d",
        "machine": machine() | {"torch_threads": args.threads},
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
        | {"precision_resolved": precision},
        "spacing_mm": spacing,
        "test": {"volumes": n, "axial_slices": n * d,
                 "kinds": {k: int((te.label == i).sum()) for i, k in enumerate(("healthy", "benign", "malignant"))},
                 "low_dose": int(te.noisy.sum()),
                 # kind accuracy of a reader that always answers "healthy": the kind check's floor
                 "slices_without_lesion_share": round(float((flat["kinds"] == 0).mean()), 4)},
        "timing": timing, "peak_rss_mb": peak_rss_mb(), "latent_checks": latent,
        "generated": gen, "real": real, "generated_without_scan_noise": without,
        "reconstructed_by_stage_one": reconstructed, "ratio_to_real": ratios, **plain_readers,
        "through_plane_difference_hu": coherence,
        "scan_noise_sd_hu": texture.sd_hu(),
        "figure": str(args.figure.relative_to(ROOT)) if args.figure.is_relative_to(ROOT) else str(args.figure),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
