"""Malignant recall against the number of real malignant training crops (the scarcity curve).

Reads the crop-study JSONs of each scarcity level (`benchmarks/pipeline_crop_study.py
--malignant-crops M --tag ...`) and draws, for the arms every level has, malignant recall
(mean over classifier seeds, 95% t-interval) against M, beside the oracle trained on all
173 malignant crops:

    python benchmarks/pipeline_crop_scarcity_figure.py 8=m8 16=m16_oversample 32=seeds5 64=m64_baselines

Each argument is LEVEL=TAG for benchmarks/results/pipeline_crop_study_TAG.json. Writes
docs/img/pipeline_crop_scarcity.png and prints the table it draws.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARMS = {"real": "real only", "reweight": "class re-weighting", "classic": "classic augmentation (MONAI)",
        "oversample x4": "real + 4x copies of the real malignant crops",
        "diffusion x4": "real + 4x synthetic (diffusion)"}


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genmed.fileio import save_figure

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("levels", nargs="+", help="LEVEL=TAG pairs")
    args = ap.parse_args()
    runs = {}
    for item in args.levels:
        level, tag = item.split("=")
        runs[int(level)] = json.loads((ROOT / "benchmarks" / "results" / f"pipeline_crop_study_{tag}.json").read_text())
    fig, ax = plt.subplots(figsize=(7.5, 4.6), layout="constrained")
    print(f"{'arm':<14}" + "".join(f"{m:>22}" for m in sorted(runs)))
    for k, (arm, label) in enumerate(ARMS.items()):
        pts = sorted((m, row) for m, r in runs.items() for row in r["table"] if row["arm"] == arm)
        if not pts:
            continue
        xs = [m * (1 + 0.04 * (k - 2)) for m, _ in pts]  # small offsets so the bars do not overlap
        ys = [row["malignant_recall"] for _, row in pts]
        err = [[y - row["malignant_recall_lo"] for y, (_, row) in zip(ys, pts)],
               [row["malignant_recall_hi"] - y for y, (_, row) in zip(ys, pts)]]
        every = len(pts) == len(runs)  # lines only where no level is missing, so none is implied
        ax.errorbar(xs, ys, yerr=err, marker="o" if every else "s", ls="-" if every else "none", capsize=3,
                    label=label + ("" if every else " (not run at every level)"))
        have = dict(pts)
        print(f"{arm:<14}" + "".join(f"{have[m]['malignant_recall']:>8.3f} ({have[m]['malignant_recall_lo']:.2f}-"
                                     f"{have[m]['malignant_recall_hi']:.2f})" if m in have else f"{'-':>22}"
                                     for m in sorted(runs)))
    oracles = [r["oracle"] for r in runs.values() if "DenseNet stem" in r.get("oracle", {}).get("note", "")]
    if oracles:  # the same oracle in every run (all training crops, same seed); its width is in the note
        rec = oracles[0]["test"]["malignant_recall"]
        ax.axhline(rec, color="grey", ls="--", lw=1, label=f"oracle: all 173 malignant crops, wider net ({rec:.2f})")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(runs), [str(m) for m in sorted(runs)])
    ax.set_xlabel("real malignant training crops (beside ~2,200 healthy and 205 benign)")
    ax.set_ylabel("test malignant recall (120 patients, 131 crops)")
    ax.set_ylim(-0.02, 1.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    seeds = sorted({r["config"]["seeds"].__len__() for r in runs.values()})
    ax.set_title("Scarce malignant class, 64-px kidney crops at 1.41 mm/px: mean over "
                 f"{'/'.join(map(str, seeds))} classifier seeds, 95% t-interval", fontsize=9)
    print(save_figure(fig, ROOT / "docs" / "img" / "pipeline_crop_scarcity.png", dpi=130))


if __name__ == "__main__":
    main()
