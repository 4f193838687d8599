"""Low-dose denoising benchmark: diffusion vs supervised UNet vs NLM / BM3D / TV.

Writes benchmarks/results/apps_denoise.json and docs/img/apps_*.png. Every config field is an
option (`--help`); the defaults below are the settings of the published run (one torch thread,
OMP_NUM_THREADS=1). Run: `PYTHONPATH=src python benchmarks/apps_denoise.py [--field value ...]`.
"""

from __future__ import annotations

from apps_bench import run

DEFAULTS = dict(size=32, n_train_patients=24, n_test_patients=24, unet_steps=300, diffusion_steps=250,
               sample_steps=10, methods=("noisy", "diffusion", "unet", "nlm", "bm3d", "tv"), n_boot=1000)

if __name__ == "__main__":
    from genmed.apps.denoise import DenoiseConfig, run_denoise

    run("denoise", DenoiseConfig, run_denoise, ('denoise.png',), DEFAULTS, __doc__)
