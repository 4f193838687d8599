"""Non-contrast -> contrast translation benchmark: UNet L1, conditional DDPM, SDEdit.

Writes benchmarks/results/apps_translate.json and docs/img/apps_*.png. Every config field is an
option (`--help`); the defaults below are the settings of the published run (one torch thread,
OMP_NUM_THREADS=1). Run: `PYTHONPATH=src python benchmarks/apps_translate.py [--field value ...]`.
"""

from __future__ import annotations

from apps_bench import run

DEFAULTS = dict(size=32, n_train_patients=24, n_test_patients=16, unet_steps=300, diffusion_steps=250,
               sample_steps=20, n_boot=1000)

if __name__ == "__main__":
    from genmed.apps.translate import TranslateConfig, run_translate

    run("translate", TranslateConfig, run_translate, ('translate.png',), DEFAULTS, __doc__)
