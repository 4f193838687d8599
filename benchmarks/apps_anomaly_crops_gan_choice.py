"""Which GAN the kidney-crop anomaly benchmark uses (issue 16), chosen on validation patients.

The GAN discriminator was the best detector of `benchmarks/apps_anomaly_crops.py` (test AUROC
0.893, target 0.90). Its settings are chosen here on validation patients (phantom seed + 2000,
every patient with a lesion, as for AnoDDPM's noise level), never on the test patients: the
published DCGAN (16 channels, 2,000 steps), twice the steps, twice the width, the stabilised
`resnet_r1` GAN, and an ensemble of 2-3 DCGANs (`gan_models`). The rule, fixed before the
runs: the highest validation AUROC wins; the test run then uses it.

    PYTHONPATH=src python benchmarks/apps_anomaly_crops_gan_choice.py [--arms dcgan16_2000,...]

Writes benchmarks/results/apps_anomaly_crops_gan_choice.json (one torch thread).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "apps_anomaly_crops_gan_choice.json"
N_VAL_PATIENTS = 20
# arm: (CropAnomalyConfig changes, GAN options beyond them)
ARMS = {
    "dcgan16_2000": (dict(), dict()),
    "dcgan16_4000": (dict(gan_steps=4000), dict()),
    "dcgan32_2000": (dict(gan_channels=32), dict()),
    "ensemble2_dcgan16_2000": (dict(gan_models=2), dict()),
    "ensemble3_dcgan16_2000": (dict(gan_models=3), dict()),
    "resnet_r1_2000": (dict(), dict(variant="resnet_r1")),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arms", default=",".join(ARMS), help="comma-separated, from: " + ", ".join(ARMS))
    args = ap.parse_args()
    torch.set_num_threads(1)

    from dataclasses import replace

    from genmed.apps import anomaly_crops as ac
    from genmed.apps.common import to_unit
    from genmed.metrics.anomaly import image_level
    from genmed.models import build_model
    from genmed.train import DictDataset
    from genmed.versions import machine

    base = ac.CropAnomalyConfig(detectors=("gan",))
    tr = ac.kidney_crops(base.n_train_patients, base, base.seed)
    train = tr.subset(~tr.lesion.any((1, 2)))
    val, y = ac.lesion_crop_set(N_VAL_PATIENTS, base, base.seed + 2000)
    x_tr, x_va = to_unit(train.hu), to_unit(val.hu)
    result = json.loads(OUT.read_text()) if OUT.is_file() else {"arms": {}}
    result.update({"benchmark": "apps_anomaly_crops_gan_choice", "machine": machine(),
                   "validation": {"patients": N_VAL_PATIENTS, "phantom_seed": base.seed + 2000,
                                  "n_lesion": int(y.sum()), "n_healthy": int((~y).sum())},
                   "train_healthy_crops": len(train.hu)})
    for arm in args.arms.split(","):
        changes, gan_options = ARMS[arm]
        cfg = replace(base, **changes)
        t0 = time.perf_counter()
        gans = []
        for k in range(cfg.gan_models):
            torch.manual_seed(cfg.seed + k)
            model = build_model("gan", size=cfg.crop, base_channels=cfg.gan_channels, **gan_options)
            gans.append(cfg.compute.fit(model, DictDataset(image=x_tr), steps=cfg.gan_steps,
                                        seed=cfg.seed + k, batch_size=cfg.batch_size,
                                        recipe="default" if gan_options else "short"))
        train_s = time.perf_counter() - t0
        scores = ac.gan_score(gans, cfg, train.hu, val.hu, x_tr, x_va)
        result["arms"][arm] = {"changes": {**changes, **gan_options},
                               "auroc": image_level(scores, y, 200, 0)["auroc"],
                               "train_s": round(train_s)}
        print(arm, json.dumps(result["arms"][arm]), flush=True)
        OUT.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
