"""3D kidney segmentation on phantom volumes: test Dice (95% patient-bootstrap CI) and seconds.

Full settings (`Seg3DRunConfig()`): 80 phantom patients, one 48 x 96 x 96 volume each
(isotropic 3.75 mm voxels, 180 x 360 x 360 mm), 60 train / 20 test patients; 3D UNet
(16, 32, 64, 128; batch norm) on 48^3 patches, batch 2, 5,000 steps, trained by the engine
in bf16 on one torch thread; sliding-window inference, two largest components. Writes
benchmarks/results/pipeline_seg3d.json with the config, test Dice + CI, per-patient Dice and
kidney volumes, wall/CPU seconds per step and the machine.
Run: `python benchmarks/pipeline_seg3d.py [RUN_DIR]` (default runs/bench_seg3d; an
interrupted run in RUN_DIR is resumed from its newest checkpoint).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "pipeline_seg3d.json"


def main(run: Path) -> dict:
    import torch

    from genmed.config import to_dict
    from genmed.fileio import write_json
    from genmed.pipeline.segmentation3d import Seg3DRunConfig, run_segmentation3d
    from genmed.train import Compute
    from genmed.versions import machine

    torch.set_num_threads(1)
    cfg = Seg3DRunConfig(compute=Compute(device="auto", precision="bf16"))
    resume = (run / "segmenter3d" / "checkpoints").is_dir()
    w0, c0 = time.perf_counter(), time.process_time()
    metrics = run_segmentation3d(cfg, run, resume=resume, log=print)
    w1, c1 = time.perf_counter(), time.process_time()
    result = {
        "config": to_dict(cfg), "run": str(run), "resumed": resume,
        "spacing_mm": metrics["spacing_mm"], "volume_shape": metrics["volume_shape"],
        "splits": {k: len(v) for k, v in metrics["splits"].items()},
        "test": metrics["test"],
        "seconds_wall": {**metrics["seconds"], "total": round(w1 - w0, 1),
                         # a resumed run timed only its last part
                         "per_train_step": None if resume else round(metrics["seconds"]["train"] / cfg.seg.steps, 4)},
        "seconds_cpu": {"total": round(c1 - c0, 1)},
        "machine": machine(),
    }
    write_json(OUT, result)
    return result


if __name__ == "__main__":
    out = main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("runs/bench_seg3d"))
    print({"kidney_dice": out["test"]["kidney_dice"], "seconds": out["seconds_wall"]})
