"""Applications benchmark, full settings: writes benchmarks/results/apps_denoise.json and
docs/img/apps_*.png. CPU (2 shared cores): minutes."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from genmed.apps.denoise import DenoiseConfig, run_denoise
from genmed.fileio import write_json
from genmed.versions import machine

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    torch.manual_seed(0)
    out = ROOT / "runs" / "bench_apps_denoise"
    res = run_denoise(DenoiseConfig(size=32, n_train_patients=24, n_test_patients=8, unet_steps=400, diffusion_steps=800, sample_steps=10, methods=('noisy', 'diffusion', 'unet', 'nlm', 'bm3d', 'tv'), n_boot=500), out)
    res["machine"] = machine()
    write_json(ROOT / "benchmarks" / "results" / "apps_denoise.json", res)
    for name in ("denoise.png",):
        shutil.copy(out / name, ROOT / "docs" / "img" / f"apps_{name}")
