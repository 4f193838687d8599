"""Can the stabilised GAN's discriminator learn? (issue 14) -> results/gan_discriminator_probe.json.

The crop study's resnet_r1 GAN kept its discriminator near chance for 600 steps on 64-px kidney
crops (docs/pipeline.md). This probe trains the discriminator *alone* (Adam, lr 2e-4, betas
(0, 0.99), the variant's recipe) to tell real images from the output of the untrained
generator, a fixed and obviously wrong fake, on two data sets of the same size: whole 64-px
phantom slices (5.6 mm per pixel) and the crop study's 64-px kidney crops (1.41 mm per pixel,
scan noise resolved). It also measures what the two have in common with that fake: the mean
absolute Laplacian per image (local texture energy, [-1, 1] units).

    python benchmarks/gan_discriminator_probe.py [--steps 40]

With `--policies`, the probe instead trains D on the crops once per DiffAugment policy (same
seed, same batches; "none" for no augmentation) and writes
results/gan_discriminator_probe_policies.json:

    python benchmarks/gan_discriminator_probe.py --steps 125 --policies none,full,translation+cutout,translation,color
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from genmed.fileio import write_json

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "gan_discriminator_probe.json"
OUT_POLICIES = ROOT / "benchmarks" / "results" / "gan_discriminator_probe_policies.json"
CROPS = "kidney crops (64 px, 1.41 mm)"


def laplacian_energy(x: torch.Tensor) -> torch.Tensor:
    """(N,) mean |4-neighbour Laplacian| of (N, 1, H, W) images."""
    c = x[..., 1:-1, 1:-1]
    lap = 4 * c - x[..., :-2, 1:-1] - x[..., 2:, 1:-1] - x[..., 1:-1, :-2] - x[..., 1:-1, 2:]
    return lap.abs().mean((1, 2, 3))


def datasets() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """name -> (images (N, 1, 64, 64) in [-1, 1], labels (N,))."""
    import numpy as np

    from genmed.data.datasets import _resize_batch, phantom_dataset
    from genmed.pipeline.crop_study import CropStudyConfig, study_crops

    slices = phantom_dataset(size=64, n_patients=48, seed=0)
    cfg = CropStudyConfig()
    _, scarce, _ = study_crops(cfg)
    crops = _resize_batch(torch.from_numpy(scarce.image)[:, None], cfg.crop, "area")
    return {"slices (64 px, 5.6 mm)": (slices.images, slices.labels),
            CROPS: (crops, torch.from_numpy(np.asarray(scarce.label, np.int64)))}


def probe(x: torch.Tensor, y: torch.Tensor, steps: int, seed: int = 0, diffaug: str | None = None) -> dict:
    """Train D alone against the untrained generator; the logged losses and logits. `diffaug`:
    a DiffAugment policy for D's inputs ("" none; None the variant's default, all three ops)."""
    from genmed.models import build_model

    torch.manual_seed(seed)
    model = build_model("gan", size=64, variant="resnet_r1", num_classes=3, diffaug=diffaug)
    opt = torch.optim.Adam(model.discriminator.parameters(), lr=2e-4, betas=(0.0, 0.99))
    log, t0 = [], time.perf_counter()
    for step in range(steps):
        idx = torch.randint(0, len(x), (32,))
        out = model.loss({"image": x[idx], "label": y[idx], "step": torch.tensor(step)}, "discriminator")
        opt.zero_grad()
        out["loss"].mean().backward()
        opt.step()
        if (step + 1) % 10 == 0:
            log.append({"step": step + 1, "loss": out["loss"].mean().item(),
                        "d_real": out["d_real"].item(), "d_fake": out["d_fake"].item()})
    with torch.no_grad():
        fake = model.generate(torch.randn(256, model.config.latent_dim), torch.randint(0, 3, (256,)))
    lap_real, lap_fake = laplacian_energy(x), laplacian_energy(fake)
    return {"log": log, "seconds": round(time.perf_counter() - t0, 1),
            "laplacian_real": [lap_real.mean().item(), lap_real.std().item()],
            "laplacian_fake": [lap_fake.mean().item(), lap_fake.std().item()]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--policies", default="", help="comma-separated policies: ops joined by +, 'none', 'full'")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from genmed.models.gan import FULL_DIFFAUG
    from genmed.versions import machine

    if args.policies:
        x, y = datasets()[CROPS]
        named = {"none": "", "full": FULL_DIFFAUG}
        result = {p: probe(x, y, args.steps, diffaug=named.get(p, p.replace("+", ","))) for p in args.policies.split(",")}
        result.update(machine=machine(), chance_loss=2 * float(torch.log(torch.tensor(2.0))), data=CROPS)
        write_json(OUT_POLICIES, result)
        for name, r in result.items():
            if isinstance(r, dict) and "log" in r:
                print(name, r["log"][-1], flush=True)
        return
    result = {name: probe(x, y, args.steps) for name, (x, y) in datasets().items()}
    result["machine"] = machine()
    result["chance_loss"] = 2 * float(torch.log(torch.tensor(2.0)))
    write_json(OUT, result)
    for name, r in result.items():
        if isinstance(r, dict) and "log" in r:
            print(name, r["log"][-1], "laplacian real", r["laplacian_real"], "fake", r["laplacian_fake"])


if __name__ == "__main__":
    main()
