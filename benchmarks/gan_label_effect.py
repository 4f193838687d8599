"""Does a class-conditional GAN use its label? (issue 14) -> results/gan_label_effect.json.

For each generator run given, the same `n` latents are drawn with every class label. The
label effect is the mean absolute pixel difference between two labels at the same latent,
divided by the mean difference between two latents at the same label (0: the label changes
nothing; about 1: it changes a crop as much as a new latent does). Also recorded: how far the
per-class BatchNorm table rows parted (a run with `class_embedding` 0). The figure puts the
same latents under each label side by side, in HU, abdomen window.

    python benchmarks/gan_label_effect.py RUN_A RUN_B --names "tables,shared embedding" [--tag T]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from genmed.fileio import write_json

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("healthy", "benign", "malignant")


def label_effect(images: np.ndarray) -> float:
    """`images` (K classes, N latents, H, W), the same latents under every label: mean |x(z, c)
    - x(z, c')| over class pairs, over mean |x(z, c) - x(z', c)| over latent pairs (z' the next
    latent)."""
    k = images.shape[0]
    across_labels = np.mean([np.abs(images[a] - images[b]).mean() for a in range(k) for b in range(a + 1, k)])
    across_latents = np.abs(images - np.roll(images, 1, axis=1)).mean()
    return float(across_labels / across_latents)


def table_spread(model) -> float | None:
    """Mean absolute deviation of the per-class gain rows from their class mean, over the
    generator's BatchNorms (None for the shared embedding)."""
    from genmed.models.gan_resnets import ConditionalBatchNorm

    rows = [m.gain.weight.detach() for m in model.generator.modules()
            if isinstance(m, ConditionalBatchNorm) and not m.shared]
    if not rows:
        return None
    return float(np.mean([(w - w.mean(0)).abs().mean().item() for w in rows]))


def main() -> None:
    import torch

    from genmed.apps.common import hu_columns_figure
    from genmed.data.transforms import unit_to_hu
    from genmed.fileio import save_figure
    from genmed.train import load_run

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--names", required=True, help="one label per run, comma-separated")
    ap.add_argument("--n", type=int, default=64, help="latents per run")
    ap.add_argument("--show", type=int, default=6, help="latents in the figure")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tag", default="", help="write gan_label_effect_TAG.json and its figure instead")
    ap.add_argument("--what", default="64-px kidney crops, 1.41 mm/px", help="the images, for the title")
    args = ap.parse_args()
    names = args.names.split(",")
    if len(names) != len(args.runs):
        raise SystemExit(f"--names gives {len(names)} labels for {len(args.runs)} runs")
    torch.set_num_threads(1)
    result, cols = {}, {}
    for name, run in zip(names, args.runs):
        model, _ = load_run(run)
        cfg = model.config
        z = torch.randn(args.n, cfg.latent_dim, generator=torch.Generator().manual_seed(args.seed))
        with torch.no_grad():
            images = np.stack([model.generate(z, torch.full((args.n,), c))[:, 0].numpy()
                               for c in range(len(CLASSES))])
        result[name] = {"run": str(run), "class_embedding": cfg.class_embedding,
                        "class_ramp": list(cfg.class_ramp),
                        "label_effect": label_effect(images), "table_row_spread": table_spread(model)}
        print(name, result[name], flush=True)
        for c, cls in enumerate(CLASSES):
            cols[f"{name}:\n{cls}"] = unit_to_hu(images[c])
    stem = "gan_label_effect" + (f"_{args.tag}" if args.tag else "")
    write_json(ROOT / "benchmarks" / "results" / f"{stem}.json",
               {"runs": result, "n_latents": args.n, "seed": args.seed})
    fig = hu_columns_figure(cols, n=args.show, row_labels=[f"z{i + 1}" for i in range(args.show)],
                            title=f"{args.what}: the same latent in each row, one column per requested class")
    save_figure(fig, ROOT / "docs" / "img" / f"{stem}.png")


if __name__ == "__main__":
    main()
