"""Pipeline on the default phantom: kidney Dice, lesion classification, error analysis, step times.

Full settings (`PipelineConfig()`: 240 phantom patients x 8 slices at 64 px, default
`PhantomConfig` incl. 15% low-dose scans; UNet 15 epochs on 48-px patches; DenseNet 30
epochs), one torch thread. Writes benchmarks/results/pipeline_train.json with the test
metrics (95% patient-bootstrap CIs), the analysis summary and wall/CPU seconds per step.
Run: `python benchmarks/pipeline_train.py [RUN_DIR]` (default runs/bench_pipeline).

`--clinical` runs `clinical_config()` instead (256-px slices, 1,000 patients, 96-px seg
patches, bf16 where fast) and writes pipeline_train_256.json.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def main(run: Path, clinical: bool = False) -> dict:
    import torch

    from genmed.config import to_dict
    from genmed.fileio import write_json
    from genmed.pipeline import PipelineConfig, analyse, clinical_config, train_pipeline
    from genmed.versions import machine

    torch.set_num_threads(1)
    cfg = clinical_config() if clinical else PipelineConfig()
    w0, c0 = time.perf_counter(), time.process_time()
    metrics = train_pipeline(cfg, run, log=print)
    w1, c1 = time.perf_counter(), time.process_time()
    page, summary = analyse(run)
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
    write_json(RESULTS / ("pipeline_train_256.json" if clinical else "pipeline_train.json"), result)
    return result


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--clinical"]
    out = main(Path(args[0]) if args else Path("runs/bench_pipeline"), clinical="--clinical" in sys.argv)
    print({k: out["test"][k]["value"] for k in ("kidney_dice", "balanced_accuracy", "malignant_recall")})
