"""3D diffusion benchmark at 32^3: training volumes/s, peak memory, orthogonal slices of samples.

Writes benchmarks/results/apps_volumes3d.json and docs/img/apps_*.png. Every config field is an
option (`--help`); the defaults below are the settings of the published run (one torch thread,
OMP_NUM_THREADS=1). Run: `PYTHONPATH=src python benchmarks/apps_volumes3d.py [--field value ...]`.
"""

from __future__ import annotations

from apps_bench import run

DEFAULTS = dict(size=32, n_patients=24, steps=150, batch_size=4, n_samples=3, sample_steps=20)

if __name__ == "__main__":
    from genmed.apps.volumes3d import Volumes3DConfig, run_volumes3d

    run("volumes3d", Volumes3DConfig, run_volumes3d, ('volumes3d.png',), DEFAULTS, __doc__)
