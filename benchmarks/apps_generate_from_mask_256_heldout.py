"""Does a 256-px mask model memorise its training slices? Loss on training vs held-out patients.

A diffusion model that keeps lowering its training loss while its loss on patients it never saw
rises has started to memorise its training set (the issue-16 mask model trains on 150 phantom
patients, 1,200 slices; Somepalli et al. 2023 and Carlini et al. 2023 show diffusion models
replicating small training sets). This benchmark scores each mask model given with `--run`
(`apps_generate_from_mask_256.py --out-run`) by its own training loss (the region-weighted
eps/v-MSE of `model.loss`) on `--patients` training patients (phantom seed 0, the first
patients of every training set) and as many validation patients (seed 3000), with the same
noise and timestep draws for every model (torch seed 0, `--draws` passes over each set).

    PYTHONPATH=src python benchmarks/apps_generate_from_mask_256_heldout.py --run RUN_A --run RUN_B \
        --out results/apps_generate_from_mask_256_heldout.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from apps_generate_from_mask_256 import slices


def mean_loss(model, x: torch.Tensor, cond: torch.Tensor, ids: torch.Tensor, draws: int, batch: int = 16) -> float:
    """`model.loss` averaged over `draws` passes over (x, cond, ids), torch seed 0 before the first."""
    torch.manual_seed(0)
    losses = []
    with torch.no_grad():
        for _ in range(draws):
            for i in range(0, len(x), batch):
                b = {"image": x[i:i + batch], "cond": cond[i:i + batch], "label": ids[i:i + batch]}
                losses.append(model.loss(b)["loss"].mean().item())
    return sum(losses) / len(losses)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, action="append", required=True, help="a trained mask model (repeatable)")
    ap.add_argument("--patients", type=int, default=16, help="patients per set (8 slices each)")
    ap.add_argument("--draws", type=int, default=4, help="noise and timestep draws per slice")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from genmed.apps.common import to_unit
    from genmed.data.conditions import attributes_of, condition_maps, encode
    from genmed.models.mask_generation import check_mask_model
    from genmed.train import load_run
    from genmed.versions import machine

    sets = {}
    for name, seed in (("train", 0), ("validation", 3000)):
        s = slices(args.patients, 256, seed)
        cond, ids = encode(condition_maps(s), attributes_of(s), 256)
        sets[name] = (to_unit(s.image), cond, ids)
    rows = []
    for run in args.run:
        model, run_cfg = load_run(run)
        model = check_mask_model(model, str(run)).eval()
        losses = {name: mean_loss(model, *data, args.draws) for name, data in sets.items()}
        rows.append({"run": str(run), "trained_steps": run_cfg.steps, **losses,
                     "gap": losses["validation"] - losses["train"]})
        print(json.dumps(rows[-1]), flush=True)
    result = {"benchmark": "apps_generate_from_mask_256_heldout",
              "machine": machine() | {"torch_threads": args.threads},
              "settings": {"patients_per_set": args.patients, "slices_per_set": 8 * args.patients,
                           "draws": args.draws, "train_seed": 0, "validation_seed": 3000,
                           "loss": "each model's own training loss (model.loss), same torch seed"},
              "runs": rows}
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
