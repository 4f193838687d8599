"""Anomaly-detection benchmark (full settings): writes benchmarks/results/apps_anomaly.json
and docs/img/apps_anomaly*.png. CPU, about 10 minutes on 2 cores."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from genmed.apps.anomaly import AnomalyConfig, run_anomaly
from genmed.fileio import write_json
from genmed.versions import machine

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    torch.manual_seed(0)
    out = ROOT / "runs" / "bench_apps_anomaly"
    res = run_anomaly(AnomalyConfig(size=32, n_train_patients=40, n_test_patients=24,
                                    vae_steps=800, gan_steps=800, diffusion_steps=800,
                                    t_start=250, recon_steps=10, n_draws=2, n_boot=500), out)
    res["machine"] = machine()
    write_json(ROOT / "benchmarks" / "results" / "apps_anomaly.json", res)
    for name in ("anomaly.png", "anomaly_sensitivity.png"):
        shutil.copy(out / name, ROOT / "docs" / "img" / f"apps_{name}")
