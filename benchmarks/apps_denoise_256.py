"""Low-dose denoising at clinical resolution: 256 px (1.41 mm/px), projection-domain low dose
(Poisson counts on the sinogram, FBP; `genmed.data.lowdose`) at 25% and 10% of full dose.

RED-CNN-style residual UNet (MSE, 64-px patches, sliding-window inference) and a diffusion model
on 64-px clean patches against BM3D, NLM and TV, every classical method and the diffusion model
given the noise SD estimated from the scan (soft-tissue local-SD mode, Christianson et al. 2015).
Writes benchmarks/results/apps_denoise_256.json and docs/img/apps_256_denoise.png; the 32-px
white-noise benchmark (`apps_denoise.py`) stays as the history. Every config field is an option.
Run: `GENMED_CACHE_DIR=~/.cache/genmed PYTHONPATH=src python benchmarks/apps_denoise_256.py`.
"""

from __future__ import annotations

import dataclasses

from apps_bench import run

if __name__ == "__main__":
    from genmed.apps.denoise import DenoiseConfig, clinical_denoise_config, run_denoise

    base = clinical_denoise_config()
    defaults = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
    run("denoise_256", DenoiseConfig, run_denoise, ("denoise.png",), defaults, __doc__,
        figure_prefix="apps_256_")
