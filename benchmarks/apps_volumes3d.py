"""Applications benchmark, full settings: writes benchmarks/results/apps_volumes3d.json and
docs/img/apps_*.png. CPU (2 shared cores): minutes."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from genmed.apps.volumes3d import Volumes3DConfig, run_volumes3d
from genmed.fileio import write_json
from genmed.versions import machine

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    torch.manual_seed(0)
    out = ROOT / "runs" / "bench_apps_volumes3d"
    res = run_volumes3d(Volumes3DConfig(size=32, n_patients=24, steps=200, batch_size=4, n_samples=3, sample_steps=20), out)
    res["machine"] = machine()
    write_json(ROOT / "benchmarks" / "results" / "apps_volumes3d.json", res)
    for name in ("volumes3d.png",):
        shutil.copy(out / name, ROOT / "docs" / "img" / f"apps_{name}")
