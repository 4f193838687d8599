"""The comparison's report.html: grids, metric tables, plots, memorisation, curves, settings.

Images and plots are written under OUT/img/ and linked relatively, so OUT can be moved whole.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from genmed.fileio import save_figure, write_png
from genmed.report import Page, image_grid

QUALITY = (("fid", "FID ↓"), ("kid", "KID ↓"), ("precision", "precision ↑"), ("density", "density ↑"))
DIVERSITY = (("recall", "recall ↑"), ("coverage", "coverage ↑"),
             ("intra_ms_ssim_fake", "MS-SSIM within set ↓"))


def _ci(e: dict | None, digits: int = 3) -> str:
    if e and "ms_ssim" in e:  # intra-set MS-SSIM: mean +- standard error over random pairs
        return f"{e['ms_ssim']:.{digits}g} ± {e['ms_ssim_sem']:.2g}"
    if not e or e.get("value") is None:
        return "n/a"
    low, high = e.get("low"), e.get("high")
    if low is None or high is None:
        return f"{e['value']:.{digits}g}"
    return f"{e['value']:.{digits}g} [{low:.{digits}g}, {high:.{digits}g}]"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _grid(path: Path, images: np.ndarray, n: int = 36) -> Path:
    return write_png(path, image_grid(images[:n, 0], ncol=6, upscale=3))


def _err(estimates: list[dict]) -> list[list[float]]:
    """Error-bar lengths (a percentile bootstrap CI need not contain the point value)."""
    return [[max(0.0, e["value"] - e["low"]) for e in estimates],
            [max(0.0, e["high"] - e["value"]) for e in estimates]]


def _pr_plot(result: dict, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    for family, r in result["families"].items():
        p, rc = r["quality"]["precision"], r["diversity"]["recall"]
        ax.errorbar(rc["value"], p["value"], xerr=_err([rc]), yerr=_err([p]), fmt="o", capsize=3, label=family)
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall (diversity)")
    ax.set_ylabel("precision (quality)")
    ax.set_title("Precision vs recall, 95% CI", fontsize=9)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def _curves_plot(result: dict, path: Path) -> Path:
    plt = _plt()
    fams = list(result["families"])
    fig, axes = plt.subplots(1, len(fams), figsize=(3.4 * len(fams), 2.8), squeeze=False)
    for ax, family in zip(axes[0], fams):
        jsonl = Path(result["families"][family]["run_dir"]) / "metrics.jsonl"
        records = [json.loads(ln) for ln in jsonl.read_text().splitlines() if ln.strip()] if jsonl.is_file() else []
        keys = sorted({k for r in records for k in r if k.endswith("/loss")})
        for key in keys:
            pts = [(r["step"], r[key]) for r in records if key in r]
            ax.plot(*zip(*pts), label=key)
        ax.set_title(family, fontsize=9)
        ax.set_xlabel("step")
        if keys:
            ax.legend(fontsize=7)
    fig.suptitle("Training losses (metrics.jsonl)", fontsize=9)
    return save_figure(fig, path)


def _study_plot(study: dict, path: Path) -> Path:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for sampler in dict.fromkeys(r["sampler"] for r in study["rows"]):
        rows = sorted((r for r in study["rows"] if r["sampler"] == sampler), key=lambda r: r["steps"])
        nfe = [r["nfe"] for r in rows]
        fid = [r["fid"]["value"] for r in rows]
        axes[0].errorbar(nfe, fid, yerr=_err([r["fid"] for r in rows]), marker="o", capsize=3, label=sampler)
        axes[1].plot(nfe, [1000 * r["seconds_per_image"] for r in rows], marker="o", label=sampler)
    for ax, label in zip(axes, ("FID (95% CI)", "ms per image")):
        ax.set_xscale("log")
        ax.set_xlabel("network evaluations (steps)")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    fig.suptitle(f"Sampler study on one checkpoint ({study['n_images']} images per setting)", fontsize=9)
    return save_figure(fig, path)


def _memo_panel(path: Path, fake: np.ndarray, train: np.ndarray, memo: dict, n: int = 6) -> Path:
    """Top row: the samples closest to a training image; bottom row: that training image."""
    pairs = memo["closest_pairs"][:n]
    top = [fake[p["sample"], 0] for p in pairs]
    bottom = [train[p["train"], 0] for p in pairs]
    return write_png(path, image_grid(np.stack(top + bottom), ncol=len(pairs), upscale=3))


def write_report(result: dict, real: np.ndarray, samples: dict[str, np.ndarray],
                 train: np.ndarray, out: Path) -> Path:
    """Write OUT/report.html (and OUT/img/*.png) from the comparison `result`."""
    img = out / "img"
    ext = result["extractor"]
    page = Page("genmed compare: diffusion vs GAN vs VAE")
    page.text(f"Data: {result['data']['source']} at {result['data']['size']} px; "
              f"{result['data']['n_train_images']} training images; metrics against "
              f"{result['data']['n_real_heldout']} held-out real images "
              f"({result['data']['heldout']}). Budget: {result['budget']['statement']}.")
    page.heading("Samples next to real images")
    figs = [(_grid(img / "real.png", real), "real (held-out)")]
    figs += [(_grid(img / f"samples_{f}.png", x), f"{f} ({result['families'][f]['sampler']})")
             for f, x in samples.items()]
    page.figures(figs, base=out)
    page.heading("Quality (fidelity)")
    page.text(f"Feature extractor: {ext['name']}, weights SHA-256 {ext['weights_hash']}. "
              "Values with 95% CIs (bootstrap; KID: over subsets).", "note")
    fam = result["families"]
    page.table([{"family": f, **{label: _ci(r["quality"][k]) for k, label in QUALITY}} for f, r in fam.items()])
    page.heading("Diversity")
    rows = []
    for f, r in fam.items():
        d = r["diversity"]
        row = {"family": f, **{label: _ci(d.get(k)) for k, label in DIVERSITY}}
        row["MS-SSIM within real set"] = _ci(d.get("intra_ms_ssim_real"))
        rows.append(row)
    page.table(rows)
    page.text("Recall and coverage use the extractor's features; MS-SSIM is on pixels between random "
              "pairs of one set (lower = more varied; compare with the real set's value).", "note")
    page.figures([(_pr_plot(result, img / "precision_recall.png"), "precision vs recall")], base=out)
    page.heading("Memorisation: nearest training neighbours")
    page.table([{"family": f, "share flagged": r["memorisation"]["share_flagged"],
                 "held-out reference": r["memorisation"]["share_heldout_below"],
                 "median distance (samples)": r["memorisation"]["median_sample_distance"],
                 "median distance (held-out)": r["memorisation"]["median_heldout_distance"],
                 "Mann-Whitney p": r["memorisation"]["mannwhitney_p"]} for f, r in fam.items()])
    page.text("Distances are RMS pixel differences ([-1, 1] units); the threshold is the 5% quantile "
              "of held-out images' distances to the training set. Panels: top row the samples "
              "closest to a training image, bottom row that training image.", "note")
    page.figures([(_memo_panel(img / f"memorisation_{f}.png", samples[f], train, r["memorisation"]),
                   f"{f}: closest pairs") for f, r in fam.items()], base=out)
    page.heading("Training curves and cost")
    page.figures([(_curves_plot(result, img / "training_curves.png"), "losses per step")], base=out)
    page.table([{"family": f, "steps": r["steps"], "images seen": r["images_seen"],
                 "train seconds": r["train_seconds"] if r["train_seconds"] is not None else "loaded",
                 "train img/s": r["train_img_per_s"] if r["train_img_per_s"] is not None else "-",
                 "sampler": r["sampler"], "ms per sample": 1000 * r["sampling_seconds_per_image"]}
                for f, r in fam.items()])
    study = result.get("sampler_study")
    if study:
        page.heading("Diffusion sampler study (same checkpoint, same noise)")
        page.table([{"sampler": r["sampler"], "steps": r["steps"], "NFE": r["nfe"],
                     "FID": _ci(r["fid"]), "KID": _ci(r["kid"]),
                     "ms per image": 1000 * r["seconds_per_image"]} for r in study["rows"]])
        v = study["verdict"]
        if v.get("ratio") is not None:
            page.text(f"{v['fast']} reaches FID {v['fid_fast']:.3g} vs {v['fid_reference']:.3g} for "
                      f"{v['reference']} (ratio {v['ratio']:.2f}; target <= 1.10: "
                      f"{'met' if v['within_10_percent'] else 'not met'}), {v['speedup']:.0f}x faster "
                      "per image. Published anchor (CIFAR-10): DPM-Solver 2.87 FID at 20 NFE vs "
                      "DDPM 3.17 at 1000 steps.")
        page.figures([(_study_plot(study, img / "sampler_study.png"), "FID and time vs steps")], base=out)
    page.heading("Settings and versions")
    page.table([{"setting": k, "value": json.dumps(v) if isinstance(v, (list, dict)) else v}
                for k, v in result["config"].items()])
    page.table([{"item": k, "value": v} for k, v in result["machine"].items()])
    return page.write(out / "report.html")
