"""Phase translation at clinical resolution: non-contrast -> contrast-enhanced CT at 256 px
(1.41 mm/px), where kidney and malignant-mass enhancement is the signal.

Residual UNet (L1) and pix2pix (that UNet + a conditional PatchGAN) on 64-px patches, and a
conditional diffusion model (Palette: the source stacked onto x_t) trained on 64-px patch pairs
and sampled on whole slices (its UNet has no attention, so it is fully convolutional), against
the identity. Scores: PSNR / SSIM / MAE on the slice, MAE inside the kidneys, signed HU error
in malignant and benign lesions. Writes benchmarks/results/apps_translate_256.json and
docs/img/apps_256_translate.png; the 32-px benchmark (`apps_translate.py`) stays as the history.
Run: `PYTHONPATH=src python benchmarks/apps_translate_256.py [--field value ...]`.
"""

from __future__ import annotations

import dataclasses

from apps_bench import run

if __name__ == "__main__":
    from genmed.apps.translate import TranslateConfig, clinical_translate_config, run_translate

    base = clinical_translate_config(n_test_patients=10, unet_steps=2000, diffusion_steps=800,
                                     sample_steps=10)
    defaults = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
    run("translate_256", TranslateConfig, run_translate, ("translate.png",), defaults, __doc__,
        figure_prefix="apps_256_")
