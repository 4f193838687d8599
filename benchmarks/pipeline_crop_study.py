"""Scarce-malignant augmentation study on native kidney crops (`genmed.pipeline.crop_study`).

Full settings: `CropStudyConfig()`: 64-px crops (90 mm at 1.41 mm/px) from 256-px phantom
slices; 200 training patients made scarce to 32 malignant crops; 120 held-out test patients;
5 seeds per arm; ratios 0.5/1/2/4; diffusion, stabilised GAN (resnet_r1) and VAE trained on
the scarce crops. One torch thread per process. The generators train first, each in its own
process so two cores share the work, then the classifiers:

    python benchmarks/pipeline_crop_study.py --train diffusion RUN   # and gan, vae (in parallel)
    python benchmarks/pipeline_crop_study.py RUN                      # classifiers, tables

Writes benchmarks/results/pipeline_crop_study.json and docs/img/pipeline_crop_study.png.
`--gen-steps N` and `--seeds K` change the budget (the JSON records them).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    import torch

    from genmed.fileio import write_json
    from genmed.pipeline.crop_study import (CropStudyConfig, crop_study, load_crop_generators, study_crops,
                                            train_crop_generators)
    from genmed.versions import machine

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--train", default="", help="train this generator family only, then stop")
    ap.add_argument("--gen-steps", type=int, default=CropStudyConfig.gen_steps)
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = CropStudyConfig(gen_steps=args.gen_steps, seeds=tuple(range(args.seeds)))
    if args.train:
        _, scarce, _ = study_crops(cfg)
        train_crop_generators(dataclasses.replace(cfg, families=(args.train,)), scarce, args.run)
        return
    result = crop_study(cfg, args.run, load_crop_generators(args.run, cfg), log=print)
    result["machine"] = machine()
    write_json(ROOT / "benchmarks" / "results" / "pipeline_crop_study.json", result)
    shutil.copyfile(args.run / "crop_study.png", ROOT / "docs" / "img" / "pipeline_crop_study.png")
    for row in result["table"]:
        print(f"{row['arm']:<14} malignant recall {row['malignant_recall']:.3f} "
              f"diff {row['recall_diff']:+.3f} [{row['recall_diff_lo']:+.3f}, {row['recall_diff_hi']:+.3f}]")


if __name__ == "__main__":
    main()
