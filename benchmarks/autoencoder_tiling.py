"""Whole-slice against tiled decoding for a 2-D autoencoder trained on crops (issue 13).

A 3-D autoencoder trained on 64^3 crops decodes 128^3 volumes in tiles of its crop
(`AutoencoderModel.decode`; `ldm3d_quality.py` measures that). This checks whether 2-D needs the
same: the held-out 256-px phantom slices are encoded whole (posterior mean), then decoded whole
and in overlapping tiles of the training crop's latent side, and both are scored against the
noise-free slice (PSNR, SSIM, MAE in W400/L40).

    PYTHONPATH=src python benchmarks/autoencoder_tiling.py --run RUN   # a 256-px autoencoder run
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True, help="a trained 2-D autoencoder run")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "autoencoder_tiling.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from genmed.data.datasets import load_training_data
    from genmed.data.modality import CT_WINDOW
    from genmed.metrics.paired import paired_per_image
    from genmed.train.run import load_run
    from genmed.versions import machine

    model, _ = load_run(args.run)
    model.eval()
    cfg = model.config
    test = load_training_data("phantom", size=cfg.size, split="test")
    clean = CT_WINDOW.from_unit(test.extras["clean"][:, 0].float().numpy())
    scores = {}
    with torch.no_grad():
        z = torch.cat([model.latent(test.images[i:i + 8], sample=False)
                       for i in range(0, len(test.images), 8)])
        for tiled in (False, True):
            rec = torch.cat([model.decode(z[i:i + 8], tiled=tiled) for i in range(0, len(z), 8)])
            per_image = paired_per_image(CT_WINDOW.from_unit(rec[:, 0].float().numpy()), clean)
            scores["tiled" if tiled else "whole"] = {k: round(float(np.mean(v)), 3)
                                                     for k, v in per_image.items()}
    result = {"benchmark": "autoencoder_tiling", "machine": machine() | {"torch_threads": args.threads},
              "run": str(args.run), "size": cfg.size, "train_crop": cfg.train_crop,
              "latent_tile": (cfg.train_crop or cfg.size) // cfg.downsampling,
              "test_slices": len(test.images), "reference": "noise-free slice, W400/L40",
              "decoding": scores}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
