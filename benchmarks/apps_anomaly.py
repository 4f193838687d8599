"""Anomaly-detection benchmark: healthy-only training, intensity / VAE / GAN / AnoDDPM detectors.

Writes benchmarks/results/apps_anomaly.json and docs/img/apps_*.png. Every config field is an
option (`--help`); the defaults below are the settings of the published run (one torch thread,
OMP_NUM_THREADS=1). Run: `PYTHONPATH=src python benchmarks/apps_anomaly.py [--field value ...]`.
"""

from __future__ import annotations

from apps_bench import run

DEFAULTS = dict(size=32, n_train_patients=40, n_test_patients=24, vae_steps=400, gan_steps=300,
               diffusion_steps=250, t_start=250, recon_steps=10, n_draws=2, n_boot=1000)

if __name__ == "__main__":
    from genmed.apps.anomaly import AnomalyConfig, run_anomaly

    run("anomaly", AnomalyConfig, run_anomaly, ('anomaly.png', 'anomaly_sensitivity.png'), DEFAULTS, __doc__)
