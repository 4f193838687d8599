"""Kidney-crop anomaly benchmark (issue 16): 64-px crops at 1.41 mm/px, healthy-only training,
intensity / VAE / GAN (discriminator, inversion) / AnoDDPM (Gaussian, simplex) detectors.

Writes benchmarks/results/apps_anomaly_crops.json and docs/img/apps_anomaly_crops.png. Every
config field is an option (`--help`); the defaults below are the settings of the published run
(one torch thread, OMP_NUM_THREADS=1, sized for about an hour of one CPU core), except the GAN's
width: that run had `--gan-channels 16`; 32, chosen afterwards on validation patients
(`apps_anomaly_crops_gan_choice.py`), is the default now, and its GAN rows were rerun with
`--detectors intensity,gan,gan_inversion --gan-channels 32` (`apps_anomaly_crops_gan32.json`,
copied by hand from apps_anomaly_crops.json). Run:
`PYTHONPATH=src python benchmarks/apps_anomaly_crops.py [--field value ...]`.
"""

from __future__ import annotations

from apps_bench import run

DEFAULTS: dict = dict()  # the config's own defaults are the published settings

if __name__ == "__main__":
    from genmed.apps.anomaly_crops import CropAnomalyConfig, run_crop_anomaly

    run("anomaly_crops", CropAnomalyConfig, run_crop_anomaly, ("anomaly_crops.png",), DEFAULTS, __doc__)
