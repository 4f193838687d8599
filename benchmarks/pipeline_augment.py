"""Augmentation study, full setting: real vs classic MONAI augmentation vs synthetic slices.

Training: 60 phantom patients (64 px, 8 slices each) with malignant_fraction 0.1; test: 40
patients of the default phantom (other seed). Generators: one per family (diffusion, GAN
class-conditional; VAE one model per class) trained with `genmed.train` on the training
slices at 32 px for GEN_STEPS steps, samples upsampled to 64 px. Ratio 1
(synthetic:real per augmented class), 3 seeds, classifier 20 epochs, one torch thread.
Writes benchmarks/results/pipeline_augment.json (+ the study folder's CSV/PNG).
Run: `python benchmarks/pipeline_augment.py [OUT_DIR] [GEN_STEPS]`.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "pipeline_augment.json"
FAMILIES = ("diffusion", "gan", "vae")


def main(out: Path, gen_steps: int) -> dict:
    import torch

    from genmed.fileio import write_json
    from genmed.pipeline.augment import AugmentConfig, augment_study, study_data
    from genmed.pipeline.classifier import ClsConfig
    from genmed.pipeline.synthetic import train_generators
    from genmed.versions import machine

    torch.set_num_threads(1)
    cfg = AugmentConfig(ratios=(1.0,), cls=ClsConfig(epochs=20))
    train, _ = study_data(cfg)
    t0 = time.perf_counter()
    gens = train_generators(FAMILIES, train.image, train.label, train.patient_id, out, size=32,
                            steps=gen_steps, seed=cfg.data_seed, sample_steps=50)
    gen_s = time.perf_counter() - t0
    result = augment_study(cfg, out, gens, log=print)
    result.update({"generator_steps": gen_steps, "generator_size": 32, "generator_sample_steps": 50,
                   "seconds_generators": round(gen_s, 1), "machine": machine(), "out": str(out)})
    write_json(OUT, result)
    return result


if __name__ == "__main__":
    res = main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("runs/bench_augment"),
               int(sys.argv[2]) if len(sys.argv) > 2 else 250)
    for row in res["table"]:
        print(row["arm"], round(row["malignant_recall"], 3), round(row["balanced_accuracy"], 3))
