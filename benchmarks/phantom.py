"""Phantom throughput and the low-dose (radon) noise model, one thread.

Measures: 2D slices/s at 64 px and 256 px and 3D volumes/s at 64^3 and 128^3 with Gaussian noise;
256-px slices/s and 128^3 volumes/s with the radon low-dose model (sparse fast path; skimage
radon/iradon for reference; from the render cache); the projector's build time; the fast path's
difference from skimage; the dose/noise table (256 px); and draws docs/img/data_lowdose.png and
docs/img/data_kidney_crops.png. Writes benchmarks/results/phantom.json. Speeds are the best of
`REPEATS` runs (one for the slowest), wall-clock and process CPU time (CPU time is what one
core delivers when the machine is shared). Run: `python benchmarks/phantom.py` (about 4 min).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPEATS = 3
ROOT = Path(__file__).resolve().parent
OUT = ROOT / "results" / "phantom.json"
IMG = ROOT.parent / "docs" / "img"
DOSES = (1.0, 0.5, 0.25, 0.1)
WINDOW = (40.0, 400.0)  # abdomen window: level, width (HU)


def _best(fn, count: int, repeats: int = REPEATS) -> dict[str, float]:
    walls, cpus = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return {"per_s_wall": round(count / min(walls), 2), "per_s_cpu": round(count / min(cpus), 2),
            "seconds_wall_best": round(min(walls), 4), "repeats": repeats}


def _skimage_slices(clean: np.ndarray, clean_nc: np.ndarray, views: int) -> None:
    """Reference cost: both phases of each slice through skimage radon + iradon (Hann)."""
    from genmed.data.lowdose import fbp_skimage, hu_to_mu, radon_skimage

    for a in (clean, clean_nc):
        for im in a:
            fbp_skimage(radon_skimage(hu_to_mu(im)[None], views), "hann")


def speeds() -> dict:
    from genmed.data.lowdose import projector
    from genmed.data.phantom import PhantomConfig, make_slices, make_volumes

    make_slices(4, 8)  # warm-up (imports, caches)
    out = {}
    n_pat, per = 250, 8
    out["slices_2d_64"] = {"n": n_pat * per, **_best(lambda: make_slices(n_pat, per, PhantomConfig(size=64)),
                                                     n_pat * per),
                           "fields": "image, clean, image_nc, clean_nc, masks, tissue"}
    out["volumes_3d_64"] = {"n": 8, **_best(lambda: make_volumes(8, PhantomConfig(size=64)), 8),
                            "shape": [64, 64, 64]}
    g256 = PhantomConfig(size=256)
    out["slices_2d_256_gaussian"] = {"n": 160, **_best(lambda: make_slices(20, 8, g256), 160)}
    # radon fast path: the projector is built once per (size, views) and kept in memory
    t0 = time.perf_counter()
    projector(256, 360)
    build_256 = time.perf_counter() - t0
    r256 = PhantomConfig(size=256, noise_model="radon")
    out["slices_2d_256_radon_fast"] = {"n": 48, **_best(lambda: make_slices(12, 4, r256), 48),
                                       "views": 360, "projector_build_s": round(build_256, 2),
                                       "note": "both phases (CE + NC) per slice, projector already built"}
    ref = make_slices(2, 2, g256, seed=0)
    out["slices_2d_256_radon_skimage"] = {"n": 4, **_best(lambda: _skimage_slices(ref.clean, ref.clean_nc, 360),
                                                           4, 1),
                                          "note": "skimage radon + iradon(hann) of both phases, noise draws excluded"}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["GENMED_CACHE_DIR"] = tmp
        try:
            make_slices(8, 4, r256)  # fills the cache (the projector is rebuilt and saved there too)
            out["slices_2d_256_radon_cached"] = {"n": 32, **_best(lambda: make_slices(8, 4, r256), 32),
                                                 "note": "GENMED_CACHE_DIR render cache hit (clean render + load)"}
        finally:
            del os.environ["GENMED_CACHE_DIR"]
    g128 = PhantomConfig(size=128)
    out["volumes_3d_128_gaussian"] = {"n": 2, **_best(lambda: make_volumes(2, g128), 2), "shape": [128] * 3}
    t0 = time.perf_counter()
    projector(128, 360)
    build_128 = time.perf_counter() - t0
    r128 = PhantomConfig(size=128, noise_model="radon")
    out["volumes_3d_128_radon_fast"] = {"n": 1, **_best(lambda: make_volumes(1, r128), 1, 1),
                                        "shape": [128] * 3, "projector_build_s": round(build_128, 2)}
    return out


def accuracy() -> dict:
    """Fast path vs skimage on one 256-px phantom slice (contrast phase), 360 views."""
    from genmed.data.lowdose import MU_WATER_PER_MM, fbp_skimage, hu_to_mu, projector, radon_skimage
    from genmed.data.phantom import PhantomConfig, make_slices

    s = make_slices(1, 1, PhantomConfig(size=256, lesion_prob=1.0), seed=3)
    proj = projector(256, 360)
    mu = hu_to_mu(s.clean) * proj.inside
    sp = s.config.spacing_mm
    ref, fast = radon_skimage(mu, 360), proj.forward(mu)
    d_p = np.abs(fast - ref) * sp  # line integrals (mm * 1/mm)
    rec_ref, rec = fbp_skimage(ref, "hann"), proj.fbp(ref.astype(np.float32), "hann")
    d_hu = np.abs(rec - rec_ref) * 1000.0 / MU_WATER_PER_MM
    return {"radon_max_abs": float(d_p.max()), "radon_mean_abs": float(d_p.mean()),
            "radon_max_value": float((ref * sp).max()), "fbp_max_abs_hu": float(d_hu.max()),
            "fbp_mean_abs_hu": float(d_hu.mean()), "views": 360, "size": 256}


def dose_table(n_patients: int = 8, per: int = 4) -> tuple[dict, dict]:
    """Noise SD (HU) per dose at 256 px: liver (CE and NC), body; also keeps noise fields for figures."""
    from scipy import ndimage

    from genmed.data.phantom import TISSUES, PhantomConfig, make_slices

    rows, fields = [], {}
    for dose in DOSES:
        cfg = PhantomConfig(size=256, noise_model="radon", dose=(dose, dose), noisy_fraction=0.0,
                            lesion_prob=1.0, malignant_fraction=1.0)
        s = make_slices(n_patients, per, cfg, seed=0)
        liver = ndimage.binary_erosion(s.tissue == TISSUES["liver"], np.ones((1, 5, 5)), iterations=2)
        r, r_nc = s.image - s.clean, s.image_nc - s.clean_nc
        per_slice = [r[i][liver[i]].std() for i in range(len(s)) if liver[i].sum() > 500]
        rows.append({"dose": dose, "liver_sd_hu_ce": round(float(r[liver].std()), 2),
                     "liver_sd_hu_nc": round(float(r_nc[liver].std()), 2),
                     "liver_sd_hu_ce_slice_median": round(float(np.median(per_slice)), 2),
                     "liver_sd_hu_ce_slice_range": [round(float(min(per_slice)), 1), round(float(max(per_slice)), 1)],
                     "body_sd_hu_median": round(float(np.median(s.noise_hu)), 2),
                     "liver_mean_bias_hu": round(float(r[liver].mean()), 2)})
        fields[dose] = s
    meta = {"size": 256, "views": 360, "filter": "hann", "patients": n_patients, "slices_per_patient": per,
            "seed": 0, "liver": "eroded liver mask (5x5, 2 iterations), pooled over all slices"}
    return {"rows": rows, **meta}, fields


def _nps(noise: np.ndarray, spacing: float, bins: int = 24) -> tuple[np.ndarray, np.ndarray]:
    n, h, w = noise.shape
    f = np.fft.fft2(noise - noise.mean(axis=(1, 2), keepdims=True))
    nps = (np.abs(f) ** 2).mean(0) * spacing**2 / (h * w)
    fr = np.hypot(*np.meshgrid(np.fft.fftfreq(h, spacing), np.fft.fftfreq(w, spacing), indexing="ij"))
    nyq = 0.5 / spacing
    ring = np.minimum((fr / nyq * bins).astype(int), bins)
    prof = np.array([nps[ring == k].mean() for k in range(bins)])
    return (np.arange(bins) + 0.5) * nyq / bins, prof


def _save_small(fig, path: Path, dpi: int) -> None:
    """Save the figure, then as a 256-colour palette PNG (grey images + a few line colours)."""
    from PIL import Image

    from genmed.fileio import atomic_path, save_figure

    save_figure(fig, path, dpi=dpi)
    pil = Image.open(path).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    with atomic_path(path) as tmp:
        pil.save(tmp, format="PNG", optimize=True)


def _scale_bar(ax, spacing: float, mm: float, h: int, w: int) -> None:
    from matplotlib import patheffects

    px = mm / spacing
    x0, y0 = w - px - 0.05 * w, h - 0.06 * h
    halo = [patheffects.withStroke(linewidth=3.5, foreground="black")]
    ax.plot([x0, x0 + px], [y0, y0], color="white", lw=2.5, path_effects=halo)
    ax.text(x0 + px / 2, y0 - 0.025 * h, f"{mm:g} mm", color="white", ha="center", va="bottom", fontsize=8,
            path_effects=halo)


def figure_lowdose(fields: dict, table: dict, path: Path) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genmed.data.phantom import PhantomConfig, make_slices

    s100 = fields[1.0]
    i = int(np.argmax(s100.lesion_mask.reshape(len(s100), -1).sum(1)))  # slice with the largest mass
    sp = s100.config.spacing_mm
    level, width = WINDOW
    lo, hi = level - width / 2, level + width / 2
    sd = {row["dose"]: row["liver_sd_hu_ce"] for row in table["rows"]}
    # Gaussian noise at the 25% dose's liver SD, on the same clean slice
    match = sd[0.25]
    n_pat = len(np.unique(s100.patient_id))
    g = make_slices(n_pat, len(s100) // n_pat, PhantomConfig(size=256, noise_hu=(match, match), noisy_fraction=0.0,
                                                             lesion_prob=1.0, malignant_fraction=1.0), seed=0)
    panels = [("clean (noise-free)", s100.clean[i]), ("100% dose", fields[1.0].image[i]),
              ("25% dose", fields[0.25].image[i]), ("10% dose", fields[0.1].image[i]),
              (f"white Gaussian, SD {match:.0f} HU", g.image[i])]
    fig = plt.figure(figsize=(19, 9.6))
    gs = fig.add_gridspec(2, 6, width_ratios=[1, 1, 1, 1, 1, 0.05], height_ratios=[1, 0.95], hspace=0.2,
                          wspace=0.05)
    h, w = s100.clean[i].shape
    for j, (title, im) in enumerate(panels):
        ax = fig.add_subplot(gs[0, j])
        art = ax.imshow(im, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
        dose_sd = {1: sd[1.0], 2: sd[0.25], 3: sd[0.1]}.get(j)
        ax.set_title(title + (f"\nliver noise SD {dose_sd:.1f} HU" if dose_sd else "\n "), fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        _scale_bar(ax, sp, 50, h, w)
    cax = fig.add_subplot(gs[0, 5])
    fig.colorbar(art, cax=cax).set_label(f"HU (window W{width:.0f}/L{level:.0f})")
    # noise fields: radon 25% vs Gaussian at the same SD, zoomed on the body centre; then the NPS
    row = gs[1, :].subgridspec(1, 5, width_ratios=[1, 1, 0.05, 0.3, 2.2], wspace=0.1)
    zoom = (slice(h // 2 - 64, h // 2 + 64), slice(w // 2 - 64, w // 2 + 64))
    for j, (title, noise) in enumerate((("noise, 25% dose (radon)", fields[0.25].image[i] - s100.clean[i]),
                                        (f"noise, Gaussian SD {match:.0f} HU", g.image[i] - g.clean[i]))):
        ax = fig.add_subplot(row[0, j])
        nart = ax.imshow(noise[zoom], cmap="gray", vmin=-80, vmax=80, interpolation="nearest")
        ax.set_title(title + "\n(image - clean, central 180 mm)", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        _scale_bar(ax, sp, 30, 128, 128)
    fig.colorbar(nart, cax=fig.add_subplot(row[0, 2])).set_label("noise (HU)")
    ax = fig.add_subplot(row[0, 4])
    roi = (slice(None), slice(h // 2 - 32, h // 2 + 32), slice(w // 2 - 32, w // 2 + 32))
    curves = {}
    for dose in DOSES:
        f, p = _nps((fields[dose].image - fields[dose].clean)[roi], sp)
        ax.plot(f, p, label=f"radon {dose:.0%} dose", lw=1.8)
        curves[f"radon_{dose}"] = p.round(3).tolist()
    f, p = _nps((g.image - g.clean)[roi], sp)
    ax.plot(f, p, "k--", label=f"Gaussian, SD {match:.0f} HU", lw=1.5)
    curves["gaussian"] = p.round(3).tolist()
    ax.set_yscale("log")
    ax.set_xlabel("spatial frequency (cycles/mm)")
    ax.set_ylabel("NPS (HU$^2$ mm$^2$)")
    ax.set_title(f"radially averaged noise power spectrum\n(64 x 64 px ROI at the centre, {len(s100)} slices)",
                 fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower center")
    fig.suptitle(f"Low-dose CT simulation, 256 px ({sp:.2f} mm), contrast phase, 360 views, Hann FBP; "
                 f"{s100.patient_id[i]} slice {s100.slice_index[i]}, malignant mass "
                 f"{s100.lesion_diameter_mm[i]:.0f} mm", fontsize=11)
    _save_small(fig, path, dpi=100)
    return {"frequency_cycles_per_mm": f.round(4).tolist(), **curves, "gaussian_sd_hu": match}


def figure_crops(path: Path) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genmed.data.crops import crop_kidneys
    from genmed.data.phantom import LABELS, PhantomConfig, make_slices

    cfg = PhantomConfig(size=256, lesion_prob=1.0, lesion_diameter_mm=(6.0, 36.0), noise_model="radon")
    s = make_slices(6, 4, cfg, seed=7)
    sp = cfg.spacing_mm
    level, width = WINDOW
    lo, hi = level - width / 2, level + width / 2
    picks = []
    for j in range(6):
        sl = slice(j * 4, j * 4 + 4)
        crops = crop_kidneys(s.image[sl], s.kidney_mask[sl], s.lesion_mask[sl], spacing_mm=(6.0, sp, sp), size=96)
        k = int(np.argmax(s.lesion_mask[sl].reshape(4, -1).sum(1)))
        picks.append((j * 4 + k, [(c, k - c.z0) for c in crops]))
    fig = plt.figure(figsize=(16, 6.6))
    gs = fig.add_gridspec(2, 6, width_ratios=[1.6, 1, 1, 1, 1, 0.05], wspace=0.08, hspace=0.2)
    # overview: one slice with both crop windows
    idx, crops = picks[0]
    ax = fig.add_subplot(gs[0:2, 0])
    art = ax.imshow(s.image[idx], cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
    for c, _ in crops:
        colour = "tab:orange" if c.side == "right" else "tab:cyan"
        ax.add_patch(plt.Rectangle((c.c0 - 0.5, c.r0 - 0.5), c.size, c.size, fill=False, ec=colour, lw=1.5))
        ax.text(c.c0 + (2 if c.side == "right" else c.size - 2), c.r0 - 3, f"patient's {c.side}", color=colour,
                fontsize=9, ha="left" if c.side == "right" else "right")
    ax.set_title(f"{s.patient_id[idx]} slice {s.slice_index[idx]}: 256 px, {sp:.2f} mm\n96 x 96 px windows "
                 f"({96 * sp:.0f} mm)", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    _scale_bar(ax, sp, 50, 256, 256)
    tiles = [(idx_, c, k) for idx_, cs in picks for c, k in cs if 0 <= k < c.image.shape[0]]
    with_lesion = sorted((t for t in tiles if t[1].lesion_mask[t[2]].any()),
                         key=lambda t: -int(t[1].lesion_mask[t[2]].sum()))
    healthy = [t for t in tiles if not t[1].lesion_mask[t[2]].any()]
    chosen = (with_lesion + healthy[::3])[:8]
    for n, (idx_, c, k) in enumerate(chosen):
        ax = fig.add_subplot(gs[n // 4, 1 + n % 4])
        ax.imshow(c.image[k], cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
        les = c.lesion_mask[k].any()
        ax.contour(c.kidney_mask[k].astype(float), levels=[0.5], colors="#5090ff", linewidths=1.0)
        if les:
            colour = "#28dc5a" if s.label[idx_] == 1 else "#ff3232"
            ax.contour(c.lesion_mask[k].astype(float), levels=[0.5], colors=colour, linewidths=1.0)
        les = c.lesion_mask[k].any()
        lab = LABELS[int(s.label[idx_])] if les else "healthy"
        diam = f" {s.lesion_diameter_mm[idx_]:.0f} mm" if les else ""
        ax.set_title(f"{s.patient_id[idx_]} z{s.slice_index[idx_]} {c.side}: {lab}{diam}", fontsize=8.5)
        ax.set_xticks([])
        ax.set_yticks([])
        _scale_bar(ax, sp, 20, 96, 96)
    cax = fig.add_subplot(gs[0:2, 5])
    fig.colorbar(art, cax=cax).set_label(f"HU (window W{width:.0f}/L{level:.0f})")
    fig.suptitle("genmed data crop-kidneys: each kidney at native 1.41 mm spacing (96 x 96 px); contrast phase, "
                 "radon low-dose model (dose 25-100%)\noutlines: kidney mask blue (it includes the lesion), benign cyst green, malignant mass red",
                 fontsize=11)
    from genmed.fileio import save_figure

    save_figure(fig, path, dpi=110)  # not quantised: the palette would shift the thin outlines' colours
    return {"seed": 7, "patients": 6, "size": 256, "crop": 96}


def main() -> dict:
    import torch

    from genmed.fileio import write_json
    from genmed.versions import machine

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    result = {"benchmark": "phantom", **speeds(), "target_slices_per_s": 2000}
    result["fast_path_vs_skimage"] = accuracy()
    table, fields = dose_table()
    result["dose_table_256"] = table
    result["nps"] = figure_lowdose(fields, table, IMG / "data_lowdose.png")
    result["crops_figure"] = figure_crops(IMG / "data_kidney_crops.png")
    result["machine"] = machine()
    result["seconds_total"] = round(time.perf_counter() - t0, 1)
    write_json(OUT, result)
    for key, v in result.items():
        if isinstance(v, dict) and "per_s_wall" in v:
            print(f"{key}: {v['per_s_wall']} /s wall, {v['per_s_cpu']} /s CPU")
    print("fast path vs skimage:", result["fast_path_vs_skimage"])
    for row in table["rows"]:
        print(row)
    print(f"-> {OUT} ({result['seconds_total']} s)")
    return result


if __name__ == "__main__":
    main()
