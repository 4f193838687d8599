"""Scan noise drawn from a fitted noise power spectrum, at clinical resolution (issue 16's dose).

A latent model cannot draw scan noise (its autoencoder drops it), so mask-conditioned
generation adds it after decoding, drawn from the NPS of each dose level
(`genmed.models.noise_texture`). This benchmark measures that component alone, on the
projection-domain low-dose phantom at 256 px (Poisson counts on the sinogram, FBP;
standard scans at 25-100% dose, low-dose scans at 2-10%): the NPS of each level is fitted on
the residuals (scan - noise-free slice, inside the body) of training patients, drawn onto the
noise-free slices of held-out patients, and the noise of the result is compared with the real
scans' by two estimators: the soft-tissue local-SD mode (Christianson et al. 2015, which sees
correlated noise) and the wavelet MAD (the finest band only). White Gaussian noise of the same
SD is the baseline. The residual here is against the phantom's exact noise-free slice; with a
trained autoencoder (`fit_scan_noise`) it is against its reconstruction instead.

    GENMED_CACHE_DIR=~/.cache/genmed python benchmarks/apps_scan_noise.py

Writes benchmarks/results/apps_scan_noise.json and docs/img/apps_scan_noise.png.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LEVELS = ("standard", "low-dose")


def radial_profile(nps: np.ndarray, mm_per_px: float, bins: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(spatial frequency in cycles/mm, mean NPS in HU^2 mm^2) over rings of the 2-D NPS."""
    h, w = nps.shape
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(h, mm_per_px), np.fft.fftfreq(w, mm_per_px), indexing="ij"))
    edges = np.linspace(0, f.max() * (1 + 1e-9), bins + 1)
    idx = np.digitize(f.ravel(), edges) - 1
    prof = np.bincount(idx, nps.ravel(), bins) / np.maximum(np.bincount(idx, None, bins), 1)
    return (edges[:-1] + edges[1:]) / 2, prof * mm_per_px**2


def figure(path: Path, mm: float, real: np.ndarray, fake: np.ndarray, white: np.ndarray, level: np.ndarray,
           profiles: dict) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genmed.data.transforms import ABDOMEN_RANGE_HU
    from genmed.fileio import save_figure

    lo, hi = ABDOMEN_RANGE_HU
    i = int(np.nonzero(level == "low-dose")[0][0])
    fig = plt.figure(figsize=(13, 4.2), layout="constrained")
    grid = fig.add_gridspec(1, 4, width_ratios=(1, 1, 1, 1.3))
    crop = (slice(64, 192), slice(64, 192))  # the central 180 mm, where the kidneys are
    ext = (64 * mm, 192 * mm, 192 * mm, 64 * mm)
    for j, (name, img) in enumerate((("real low-dose scan", real[i]), ("noise-free + drawn NPS noise", fake[i]),
                                     ("noise-free + white noise, same SD", white[i]))):
        ax = fig.add_subplot(grid[j])
        im = ax.imshow(img[crop], cmap="gray", vmin=lo, vmax=hi, extent=ext)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("mm")
        if j == 0:
            ax.set_ylabel("mm")
    fig.colorbar(im, ax=fig.axes, location="bottom", shrink=0.4, label="HU (window W400/L40)")
    ax = fig.add_subplot(grid[3])
    for lv, style in zip(LEVELS, ("-", "--")):
        f, real_p, drawn_p = profiles[lv]
        ax.semilogy(f, real_p, "k" + style, label=f"{lv}: real residual")
        ax.semilogy(f, drawn_p, "C1" + style, label=f"{lv}: drawn")
    ax.set_xlabel("spatial frequency (cycles/mm)")
    ax.set_ylabel("NPS (HU² mm²)")
    ax.set_title("radial NPS inside the body", fontsize=9)
    ax.legend(fontsize=7)
    fig.suptitle("Scan noise added after decoding: fitted NPS vs real projection-domain low-dose noise, "
                 "256 px, 1.41 mm/px", fontsize=10)
    return save_figure(fig, path, dpi=120)


def main() -> None:
    from genmed.apps.denoisers import estimate_sigma, estimate_sigma_mode
    from genmed.data.phantom import PhantomConfig, make_slices
    from genmed.fileio import write_json
    from genmed.models.noise_texture import NoiseTexture, draw_noise, fit_nps
    from genmed.versions import machine

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-patients", type=int, default=16)
    ap.add_argument("--test-patients", type=int, default=16)
    ap.add_argument("--slices", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "apps_scan_noise.json")
    ap.add_argument("--figure", type=Path, default=ROOT / "docs" / "img" / "apps_scan_noise.png")
    args = ap.parse_args()
    t0 = time.perf_counter()
    cfg = PhantomConfig(size=256, noise_model="radon", noisy_fraction=0.5)
    train = make_slices(args.train_patients, args.slices, cfg, seed=args.seed)
    test = make_slices(args.test_patients, args.slices, cfg, seed=args.seed + 1)
    render_s = time.perf_counter() - t0
    level = lambda s: np.where(s.noisy, LEVELS[1], LEVELS[0])  # noqa: E731
    body = lambda s: s.clean > -500  # noqa: E731
    tex = NoiseTexture.fit(train.image - train.clean, level(train), mask=body(train))
    rng = np.random.default_rng(args.seed)
    fake = test.clean + tex.draw(list(level(test)), rng)
    sd = tex.sd_hu()
    white = test.clean + np.stack([draw_noise(np.full((256, 256), sd[lv] ** 2), 1, rng)[0] for lv in level(test)])
    rows, profiles = {}, {}
    for lv in LEVELS:
        m = level(test) == lv
        row = {"n_test_slices": int(m.sum()), "fitted_sd_hu": sd[lv],
               "true_sd_in_body_hu": float(test.noise_hu[m].mean())}
        for est_name, est in (("local_sd_mode", lambda x: estimate_sigma_mode(x, cfg.spacing_mm)),
                              ("wavelet_mad", estimate_sigma)):
            r, f, w = (float(est(x[m]).mean()) for x in (test.image, fake, white))
            row[est_name] = {"real": r, "drawn_nps": f, "white_same_sd": w,
                             "ratio_drawn": f / r, "ratio_white": w / r}
        rows[lv] = row
        freq, real_p = radial_profile(fit_nps(test.image[m] - test.clean[m], body(test)[m]), cfg.spacing_mm)
        _, drawn_p = radial_profile(fit_nps(fake[m] - test.clean[m], body(test)[m]), cfg.spacing_mm)
        profiles[lv] = (freq, real_p, drawn_p)
    figure(args.figure, cfg.spacing_mm, test.image, fake, white, level(test), profiles)
    write_json(args.out, {
        "benchmark": "apps_scan_noise", "machine": machine(),
        "settings": {"size": 256, "mm_per_px": cfg.spacing_mm, "noise_model": "radon", "views": cfg.views,
                     "dose_standard": list(cfg.dose), "dose_low": list(cfg.noisy_dose),
                     "train_patients": args.train_patients, "test_patients": args.test_patients,
                     "slices_per_patient": args.slices, "seed": args.seed,
                     "residual": "scan - noise-free slice, inside the body (clean > -500 HU)"},
        "levels": rows,
        "target_within_20pct": {lv: abs(rows[lv]["local_sd_mode"]["ratio_drawn"] - 1) <= 0.2 for lv in LEVELS},
        "radial_nps": {lv: {"cycles_per_mm": p[0].round(4).tolist(), "real": p[1].round(3).tolist(),
                            "drawn": p[2].round(3).tolist()} for lv, p in profiles.items()},
        "seconds": {"render": round(render_s, 1), "total": round(time.perf_counter() - t0, 1)},
        "figure": str(args.figure.relative_to(ROOT))})
    for lv, row in rows.items():
        print(lv, row)


if __name__ == "__main__":
    main()
