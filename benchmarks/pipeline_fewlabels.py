"""Few-label segmentation, full setting: 10% of masks; supervised, pseudo-labels, mask-generated
pairs, all labels.

60 phantom patients (64 px, 8 slices), 25% held out for test; 10% of the pool's patients keep
their masks; UNet (8, 16, 32, 64) on 32-px patches, 400 optimiser steps per arm, 3 seeds; the
mask-conditioned SPADE diffusion (genmed.apps) trained GEN_STEPS steps on the labelled slices,
10 sampler steps, 2 generated pairs per labelled slice; one torch thread.
Writes benchmarks/results/pipeline_fewlabels.json (+ CSVs in the out folder).
Run: `python benchmarks/pipeline_fewlabels.py [OUT_DIR] [GEN_STEPS] [ARM,ARM...]` (default 100, all arms).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "pipeline_fewlabels.json"


def main(out: Path, gen_steps: int, arms: tuple[str, ...] | None = None) -> dict:
    import dataclasses

    import torch

    from genmed.fileio import write_json
    from genmed.pipeline.fewlabels import FewLabelsConfig, few_labels_study
    from genmed.pipeline.segmentation import SegConfig
    from genmed.versions import machine

    torch.set_num_threads(1)
    cfg = FewLabelsConfig(steps=400, gen_steps=gen_steps, gen_sample_steps=10,
                          seg=SegConfig(channels=(8, 16, 32, 64), patch=32))
    if arms:
        cfg = dataclasses.replace(cfg, arms=arms)
    result = few_labels_study(cfg, out, log=print)
    result["machine"] = machine()
    write_json(OUT, result)
    return result


if __name__ == "__main__":
    res = main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("runs/bench_fewlabels"),
               int(sys.argv[2]) if len(sys.argv) > 2 else 100,
               tuple(sys.argv[3].split(",")) if len(sys.argv) > 3 else None)
    for row in res["table"]:
        print(row["arm"], round(row["dice"], 3), round(row["dice_lo"], 3), round(row["dice_hi"], 3))
