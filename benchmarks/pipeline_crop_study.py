"""Scarce-malignant augmentation study on native kidney crops (`genmed.pipeline.crop_study`).

Full settings: `CropStudyConfig()`: 64-px crops (90 mm at 1.41 mm/px) from 256-px phantom
slices; 200 training patients made scarce to 32 malignant crops; 120 held-out test patients;
5 seeds per arm; ratios 0.5/1/2/4; diffusion, stabilised GAN (resnet_r1) and VAE trained on
the scarce crops. One torch thread per process. The generators train first, each in its own
process so two cores share the work, then the classifiers:

    python benchmarks/pipeline_crop_study.py --train diffusion RUN   # and gan, vae (in parallel)
    python benchmarks/pipeline_crop_study.py RUN                      # classifiers, tables

Writes benchmarks/results/pipeline_crop_study.json, docs/img/pipeline_crop_study.png (the
table) and docs/img/pipeline_crop_samples.png (real and synthetic malignant crops).
`--families ""` runs the baselines only (real, reweight, classic, and the oracle).
`--gen-steps N` and `--seeds K` change the budget (the JSON records them); `--malignant-crops M`
sets the scarcity level (8, 16, 32, 64 in docs/pipeline.md; generators are trained per level);
`--ratios 2,4` keeps only those synthetic ratios, `--baselines ""` runs no baseline arm but
"real" (the reference of every difference), `--gan-set KEY=VALUE` (with `--train gan`, repeatable)
sets one more GAN option, e.g. `--gan-set class_embedding=64 --gan-set "class_ramp=[100,400]"`, and `--tag T` writes pipeline_crop_study_T.json and
docs/img/pipeline_crop_study_T.png and pipeline_crop_samples_T.png instead.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def generator_configs(run: Path) -> dict[str, dict]:
    """The engine config of each generator in RUN/generators: what each family really was."""
    import yaml

    gens = run / "generators"
    return {d.name: yaml.safe_load((d / "config.yaml").read_text())
            for d in sorted(gens.iterdir()) if (d / "config.yaml").is_file()} if gens.is_dir() else {}


def samples_figure(run: Path, cfg, n: int = 8, tag: str = "") -> Path:
    """Rows: scarce real malignant training crops, held-out real ones, then each generator's;
    docs/img/pipeline_crop_samples[_TAG].png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from genmed.data.transforms import ABDOMEN_RANGE_HU, unit_to_hu
    from genmed.fileio import save_figure
    from genmed.pipeline.crop_study import MALIGNANT, study_crops

    _, scarce, test = study_crops(cfg)
    rows = {"real, training (scarce)": scarce.image[scarce.label == MALIGNANT][:n],
            "real, held-out test": test.image[test.label == MALIGNANT][:n]}
    with np.load(run / "synthetic.npz") as synth:
        rows.update({f"{fam} (synthetic)": synth[fam][:n] for fam in synth.files})
    mm = cfg.crop * 360.0 / cfg.size
    fig, axes = plt.subplots(len(rows), n, figsize=(1.6 * n, 1.75 * len(rows)), squeeze=False, layout="constrained")
    lo, hi = ABDOMEN_RANGE_HU
    for r, (name, imgs) in enumerate(rows.items()):
        for c in range(n):
            ax = axes[r, c]
            if c < len(imgs):
                im = ax.imshow(unit_to_hu(imgs[c]), cmap="gray", vmin=lo, vmax=hi, extent=(0, mm, mm, 0))
            ax.set_xticks([0, 45, 90] if r == len(rows) - 1 else [])
            ax.set_yticks([0, 45, 90] if c == 0 else [])
            ax.tick_params(labelsize=6)
        axes[r, 0].set_ylabel(name + "\nmm", fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("mm", fontsize=7)
    fig.colorbar(im, ax=axes, shrink=0.5, label="HU (window W400/L40)")
    vae = f"; the VAE on its {cfg.malignant_crops} malignant crops alone" if "vae" in cfg.families else ""
    steps = "/".join(map(str, sorted({c["steps"] for c in generator_configs(run).values()}))) or str(cfg.gen_steps)
    fig.suptitle(f"Malignant kidney crops, {cfg.crop} px at {360.0 / cfg.size:.2f} mm/px "
                 f"(generators: {steps} steps on the scarce training set{vae})", fontsize=9)
    name = "pipeline_crop_samples" + (f"_{tag}" if tag else "")
    return save_figure(fig, ROOT / "docs" / "img" / f"{name}.png", dpi=130)


def main() -> None:
    import torch

    from genmed.config import parse_assignments
    from genmed.fileio import write_json
    from genmed.pipeline.crop_study import (GENERATOR_OPTIONS, CropStudyConfig, crop_study, load_crop_generators,
                                            study_crops, train_crop_generators)
    from genmed.versions import machine

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--train", default="", help="train this generator family only, then stop")
    ap.add_argument("--gen-steps", type=int, default=CropStudyConfig.gen_steps)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--malignant-crops", type=int, default=CropStudyConfig.malignant_crops,
                    help="malignant training crops kept (the scarcity level)")
    ap.add_argument("--autoencoder", default=None,
                    help="with --train ldm: reuse this autoencoder run (outside RUN/generators/gen_ldm)")
    ap.add_argument("--gan-variant", default="", help="with --train gan: this variant instead of resnet_r1")
    ap.add_argument("--gan-diffaug", default=None,
                    help="with --train gan: this DiffAugment policy (e.g. 'translation,cutout'; '' none)")
    ap.add_argument("--gan-ada", type=float, default=None,
                    help="with --train gan: ADA's target for E[sign D(real)] (e.g. 0.6; 0 off)")
    ap.add_argument("--gan-set", action="append", default=[], metavar="KEY=VALUE",
                    help="with --train gan: one more GAN option (YAML value), e.g. class_ramp=[150,450]")
    ap.add_argument("--families", default=",".join(CropStudyConfig.families))
    ap.add_argument("--ratios", default=",".join(map(str, CropStudyConfig.ratios)))
    ap.add_argument("--baselines", default=",".join(CropStudyConfig.baselines),
                    help='baseline arms besides "real" ("" for none: rerun only what is new)')
    ap.add_argument("--tag", default="", help="write pipeline_crop_study_TAG.json and its table figure")
    ap.add_argument("--figure-only", action="store_true", help="redraw the samples figure from RUN")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = CropStudyConfig(gen_steps=args.gen_steps, seeds=tuple(range(args.seeds)),
                          malignant_crops=args.malignant_crops,
                          families=tuple(f for f in args.families.split(",") if f),
                          ratios=tuple(float(r) for r in args.ratios.split(",") if r),
                          baselines=tuple(b for b in args.baselines.split(",") if b))
    trained = {c["steps"] for c in generator_configs(args.run).values()}
    if not args.train and len(trained) == 1:  # record what the generators were trained for
        cfg = dataclasses.replace(cfg, gen_steps=trained.pop())
    if args.figure_only:
        print(samples_figure(args.run, cfg, tag=args.tag))
        return
    if args.train:
        _, scarce, _ = study_crops(cfg)
        options = dict(GENERATOR_OPTIONS)
        if args.gan_variant:
            options["gan"] = {**options["gan"], "variant": args.gan_variant}
        if args.gan_diffaug is not None:
            options["gan"] = {**options["gan"], "diffaug": args.gan_diffaug}
        if args.gan_ada is not None:
            options["gan"] = {**options["gan"], "ada_target": args.gan_ada}
        options["gan"] = {**options["gan"], **parse_assignments(args.gan_set, "--gan-set")}
        if args.autoencoder:  # its options come with the trained autoencoder
            options["ldm"] = {k: v for k, v in options["ldm"].items() if k != "autoencoder"}
        train_crop_generators(dataclasses.replace(cfg, families=(args.train,)), scarce, args.run, options,
                              autoencoder=args.autoencoder)
        return
    result = crop_study(cfg, args.run, load_crop_generators(args.run, cfg), log=print)
    result["machine"] = machine()
    result["generator_runs"] = generator_configs(args.run)
    name = "pipeline_crop_study" + (f"_{args.tag}" if args.tag else "")
    write_json(ROOT / "benchmarks" / "results" / f"{name}.json", result)
    shutil.copyfile(args.run / "crop_study.png", ROOT / "docs" / "img" / f"{name}.png")
    if cfg.families:
        samples_figure(args.run, cfg, tag=args.tag)
    for row in result["table"]:
        print(f"{row['arm']:<14} malignant recall {row['malignant_recall']:.3f} "
              f"diff {row['recall_diff']:+.3f} [{row['recall_diff_lo']:+.3f}, {row['recall_diff_hi']:+.3f}]")
    fidelity = result["oracle"]["class_fidelity"]
    real = [round(fidelity["real_confusion"][c][c], 3) for c in range(3)]
    for fam, f in fidelity.items():
        if isinstance(f, dict):  # a conditional generator: does the oracle read the class it was asked for?
            print(f"{fam}: oracle reads the requested class {[round(f['confusion'][c][c], 3) for c in range(3)]} "
                  f"(real test crops {real}); class-share gap {f['training_freq']['max_gap']:.3f} at the "
                  f"training frequencies, {f['uniform_freq']['max_gap']:.3f} at uniform ones")


if __name__ == "__main__":
    main()
