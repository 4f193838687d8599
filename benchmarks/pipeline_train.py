"""Pipeline on the default phantom: kidney Dice, lesion classification, error analysis, step times.

Full settings (`PipelineConfig()`: 240 phantom patients x 8 slices at 64 px, default
`PhantomConfig` incl. 15% low-dose scans; UNet 15 epochs on 48-px patches; DenseNet 30
epochs), one torch thread. Writes benchmarks/results/pipeline_train.json with the test
metrics (95% patient-bootstrap CIs), the analysis summary and wall/CPU seconds per step.
Run: `python benchmarks/pipeline_train.py [RUN_DIR]` (default runs/bench_pipeline).

`--clinical` runs `clinical_config()` instead (256-px slices, 1,250 patients, 96-px seg
patches, bf16 where fast) and writes pipeline_train_256.json; `--patients N` changes the
number of phantom patients (the split fractions stay) and writes pipeline_train_256_nN.json;
`--seed S` draws another phantom, split and initialisation (adds `_sS`), and `--tag T` names a
variant (adds `_T`), so replicate runs do not overwrite each other.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main(run: Path, clinical: bool = False, patients: int | None = None, seed: int | None = None,
         tag: str = "") -> dict:
    import torch

    from genmed.config import to_dict
    from genmed.fileio import write_json
    from genmed.pipeline import PipelineConfig, analyse, clinical_config, train_pipeline
    from genmed.versions import machine

    torch.set_num_threads(1)
    extra = {k: v for k, v in (("n_patients", patients), ("seed", seed)) if v is not None}
    cfg = clinical_config(**extra) if clinical else PipelineConfig(**extra)
    w0, c0 = time.perf_counter(), time.process_time()
    metrics = train_pipeline(cfg, run, log=print)
    w1, c1 = time.perf_counter(), time.process_time()
    _, summary = analyse(run)
    w2, c2 = time.perf_counter(), time.process_time()
    result = {
        "config": to_dict(cfg), "run": str(run), "splits": metrics["splits"],
        "test": metrics["test"], "dev": metrics["dev"],
        "analysis": {k: summary[k] for k in ("n_dev", "n_dev_errors", "dev_error_rate", "n_eyeball_errors",
                                             "categories", "parts", "recommendation")},
        "seconds_wall": {**metrics["seconds"], "train_and_predict_total": round(w1 - w0, 1),
                         "analyse": round(w2 - w1, 1)},
        "seconds_cpu": {"train_and_predict_total": round(c1 - c0, 1), "analyse": round(c2 - c1, 1)},
        "machine": machine(),
    }
    name = "pipeline_train_256" if clinical else "pipeline_train"
    name += "" if patients is None else f"_n{patients}"
    name += f"_{tag}" if tag else ""
    name += "" if seed is None else f"_s{seed}"
    write_json(RESULTS / (name + ".json"), result)
    return result


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", nargs="?", type=Path, default=Path("runs/bench_pipeline"))
    ap.add_argument("--clinical", action="store_true")
    ap.add_argument("--patients", type=int)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--tag", default="", help="variant name for the result file")
    a = ap.parse_args()
    out = main(a.run, clinical=a.clinical, patients=a.patients, seed=a.seed, tag=a.tag)
    print({k: out["test"][k]["value"] for k in ("kidney_dice", "balanced_accuracy", "malignant_recall")})
