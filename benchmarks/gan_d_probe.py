"""Why the stabilised GAN's discriminator sits at chance (issue 14) -> results/gan_d_probe.json.

In every 64-px run of the stabilised GAN, D's mean logits stay within a few hundredths of 0 on
reals and fakes (loss near 2 ln 2), although the samples are easy to tell from real slices by
eye. Either D cannot separate them (too weak, over-regularised, blinded by DiffAugment), or it
can and G moves away from every direction D finds before D has learnt it. This probe tells the
two apart: G is frozen at a checkpoint of benchmarks/gan_budget.py's seed-0 run (raw weights,
training mode as in training), and copies of D are trained alone against it with the recipe's
optimiser (Adam 2e-4, betas (0, 0.99), logistic loss, batch 32, bf16 autocast):
the run's own D with and without DiffAugment, and a freshly initialised D without it.
If a frozen-G D separates within a few dozen steps, the chance-level D of training is the game's
dynamics, not the discriminator's capacity.

    python benchmarks/gan_d_probe.py [--step 750] [--steps 150]
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import torch
import torch.nn.functional as F

from genmed.fileio import write_json

from gan_budget import ROOT, config  # a sibling: benchmarks/ is on sys.path

OUT = ROOT / "benchmarks" / "results" / "gan_d_probe.json"


def train_d_alone(model, discriminator, images: torch.Tensor, augment: bool, steps: int,
                  seed: int = 0, every: int = 25) -> list[dict]:
    """Train `discriminator` alone against the frozen generator of `model`; the loss and mean
    logits every `every` steps."""
    torch.manual_seed(seed)
    d = discriminator.train()
    opt = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.0, 0.99))
    log = []
    for t in range(steps):
        x = images[torch.randint(0, len(images), (32,))]
        with torch.no_grad():
            f = model.generator(torch.randn(32, model.config.latent_dim), None)
        if augment:
            x, f = model.augment(x), model.augment(f)
        with torch.autocast("cpu", torch.bfloat16):
            d_real, d_fake = d(x).float(), d(f).float()
        loss = (F.softplus(-d_real) + F.softplus(d_fake)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if t % every == 0 or t == steps - 1:
            log.append({"step": t, "loss": loss.item(), "d_real": d_real.mean().item(),
                        "d_fake": d_fake.mean().item()})
            print(log[-1], flush=True)
    return log


def main() -> None:
    from genmed.compare.runner import load_splits
    from genmed.train import load_run
    from genmed.train.checkpoint import load_weights
    from genmed.versions import machine

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--step", type=int, default=750, help="the checkpoint of the seed-0 run to freeze G at")
    ap.add_argument("--steps", type=int, default=150, help="D-only optimiser steps per probe")
    ap.add_argument("--parts", default=str(ROOT / "runs" / "bench_gan_budget"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = config(0, Path(args.parts))
    images = load_splits(cfg)[0].images
    run = Path(cfg.out) / "gan"
    model = load_run(run, ema=False)[0]
    load_weights(model, run / "checkpoints" / f"step-{args.step:08d}.model.safetensors")
    model.train()
    fresh = copy.deepcopy(model.discriminator)
    for m in fresh.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    probes = {"run's D, no augmentation": (copy.deepcopy(model.discriminator), False),
              "run's D, DiffAugment": (copy.deepcopy(model.discriminator), True),
              "fresh D, no augmentation": (fresh, False)}
    result = {"checkpoint_step": args.step, "d_only_steps": args.steps, "machine": machine(),
              "probes": {name: train_d_alone(model, d, images, aug, args.steps) for name, (d, aug) in probes.items()}}
    write_json(OUT, result)


if __name__ == "__main__":
    main()
