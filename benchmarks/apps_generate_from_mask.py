"""Mask- and attribute-conditioned generation benchmark (SPADE diffusion), checked by a segmenter and a classifier.

Writes benchmarks/results/apps_generate_from_mask.json and docs/img/apps_*.png. Every config field is an
option (`--help`); the defaults below are the settings of the published run (one torch thread,
OMP_NUM_THREADS=1). Run: `PYTHONPATH=src python benchmarks/apps_generate_from_mask.py [--field value ...]`.
"""

from __future__ import annotations

from apps_bench import run

DEFAULTS = dict(size=32, n_train_patients=40, n_test_patients=16, diffusion_steps=300, checker_steps=200,
               sample_steps=20)

if __name__ == "__main__":
    from genmed.apps.generate_from_mask import MaskGenConfig, run_generate_from_mask

    run("generate_from_mask", MaskGenConfig, run_generate_from_mask, ('generate_from_mask.png',), DEFAULTS, __doc__)
