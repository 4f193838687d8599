"""Figure: what the lesion classifier sees at 64 px and at 256 px (docs/img/pipeline_crops_256.png).

For one phantom patient per class (healthy, benign cyst, malignant mass, low-dose scan) the
same anatomy is rendered at 64 and at 256 px over the 360 mm field, and the classifier's
window around the ground-truth kidney mask (`crop_kidneys`, pixels outside the mask set to
air) is shown in HU, window W400/L40, with axes in mm. Cheap (seconds); no training.
Run: `python benchmarks/pipeline_crops_figure.py`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

IMG = Path(__file__).resolve().parents[1] / "docs" / "img" / "pipeline_crops_256.png"


def pick(cases, seed: int = 0) -> dict[str, int]:
    """One slice index per row: the largest lesion of each kind (clean scans), one low-dose slice."""
    rows = {}
    for name, k in (("healthy", 0), ("benign cyst", 1), ("malignant mass", 2)):
        idx = np.nonzero((cases.label == k) & ~cases.noisy)[0]
        rows[name] = int(idx[np.argmax(cases.lesion.reshape(len(cases), -1)[idx].sum(1))] if k else idx[0])
    rows["low-dose scan"] = int(np.nonzero(cases.noisy & (cases.label > 0))[0][0])
    return rows


def main() -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genmed.data.phantom import PhantomConfig
    from genmed.data.transforms import ABDOMEN_RANGE_HU, unit_to_hu
    from genmed.fileio import save_figure
    from genmed.pipeline.cases import phantom_cases
    from genmed.pipeline.classifier import ClsConfig, crop_kidneys

    cfg = ClsConfig()
    sizes = (64, 256)
    cases = {s: phantom_cases(30, 8, PhantomConfig(size=s, lesion_prob=0.8, noisy_fraction=0.3), seed=5)
             for s in sizes}
    rows = pick(cases[256])
    fig, axes = plt.subplots(len(rows), 2, figsize=(10, 1.9 * len(rows)), layout="constrained", squeeze=False)
    lo, hi = ABDOMEN_RANGE_HU
    for c, s in enumerate(sizes):
        cs = cases[s]
        shape = cfg.crop_shape(s)
        mm = 360.0 / s
        for r, (name, i) in enumerate(rows.items()):
            crop = unit_to_hu(crop_kidneys(cs.image[i:i + 1], cs.kidney[i:i + 1], shape, cfg.margin)[0, 0].numpy())
            ax = axes[r, c]
            im = ax.imshow(crop, cmap="gray", vmin=lo, vmax=hi, extent=(0, shape[1] * mm, shape[0] * mm, 0))
            les = cs.lesion_mm[i]
            if r == 0:
                ax.set_title(f"{s} px over 360 mm ({mm:.2f} mm/px), window {shape[0]}x{shape[1]} px", fontsize=9)
            ax.set_ylabel((f"{name}\nlesion {les:.0f} mm" if les > 0 else name) + "\nant. → post. (mm)",
                          fontsize=8)
            ax.tick_params(labelsize=7)
        axes[-1, c].set_xlabel("patient right → left (mm)", fontsize=8)
    fig.colorbar(im, ax=axes, shrink=0.6, label="HU (window W400/L40)")
    fig.suptitle("Classifier input: window around the kidney mask, outside set to air (same patients at 64 and 256 px)",
                 fontsize=10)
    return save_figure(fig, IMG)


if __name__ == "__main__":
    print(main())
