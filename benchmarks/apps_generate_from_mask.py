"""Applications benchmark, full settings: writes benchmarks/results/apps_generate_from_mask.json and
docs/img/apps_*.png. CPU (2 shared cores): minutes."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from genmed.apps.generate_from_mask import MaskGenConfig, run_generate_from_mask
from genmed.fileio import write_json
from genmed.versions import machine

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    torch.manual_seed(0)
    out = ROOT / "runs" / "bench_apps_generate_from_mask"
    res = run_generate_from_mask(MaskGenConfig(size=32, n_train_patients=40, n_test_patients=8, diffusion_steps=1000, checker_steps=300, sample_steps=20), out)
    res["machine"] = machine()
    write_json(ROOT / "benchmarks" / "results" / "apps_generate_from_mask.json", res)
    for name in ("generate_from_mask.png",):
        shutil.copy(out / name, ROOT / "docs" / "img" / f"apps_{name}")
