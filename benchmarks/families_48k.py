"""The families table at four times the budget, 48,000 training images per arm (issue 14)
-> results/families_48k.json.

results/families_64.json compares the five arms at 12,000 images. There the GAN misses recall
0.5; with BigGAN's slower generator it passes at 48,000 images (results/gan_budget_slow_g.json),
but against 12,000-image references. The issue asks for equal budget, so every other arm is
trained here to 48,000 images too, with the comparison's recipes, patients, seeds and extractor
(`genmed.compare.runner`'s own training config: the run of `--train` is the run
`genmed compare --budget-images 48000` would train). Diffusion costs about 22 minutes per seed on
one core, so a run is resumable: it checkpoints every 10 minutes (the engine's default) and
`--train` continues it from its newest checkpoint, also in a later session. The `gan` arm is the
slow-G budget study's 1,500-step checkpoint of the same seed (a constant-LR run, so that
checkpoint is exactly a 48,000-image run), linked in as a run folder of its own.

Each arm of a seed is then measured by `genmed.compare` on the saved runs (`--measure`, the
figures of families_64's parts), and `--merge` pools the seeds that every arm has.

    python benchmarks/families_48k.py --train diffusion --seeds 0,1,2,3,4   # one process per core
    python benchmarks/families_48k.py --train vae,dcgan,sngan --seeds 0,1,2,3,4
    python benchmarks/families_48k.py --measure --seeds 0,1,2,3,4        # the arms that finished
    python benchmarks/families_48k.py --merge
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from genmed.fileio import write_json

ROOT = Path(__file__).resolve().parents[1]
PARTS = ROOT / "runs" / "bench_families48k"  # scratch (git-ignored): one folder per seed
BUDGET = 48_000
TRAINED = ("diffusion", "vae", "dcgan", "sngan")  # the arms trained here; "gan" comes from gan_budget
ARMS = ("gan",) + TRAINED  # families_64's order
GAN_RUNS = ROOT / "runs" / "bench_gan_budget_slow_g"  # benchmarks/gan_budget.py --recipe slow_g
STEPS = BUDGET // 32  # at the comparison's batch of 32
LABELS = {"gan": "GAN, stabilised,\nG 5e-5, D 2e-4", "diffusion": "diffusion", "vae": "VAE",
          "dcgan": "DCGAN (baseline)", "sngan": "SNGAN (baseline)"}


def compare_config(seed: int):
    """The families_64 comparison of `seed` at 48,000 images, writing under PARTS/seed<N>."""
    from genmed.compare import CompareConfig

    return CompareConfig(families=ARMS, size=64, budget_images=BUDGET, n_samples=256,
                         batch_size=32, study=(), seed=seed, out=str(PARTS / f"seed{seed}"))


def run_dir(seed: int, arm: str) -> Path:
    return PARTS / f"seed{seed}" / "runs" / arm


def done_steps(folder: Path) -> int:
    """Steps of the newest checkpoint in run `folder` (0: none yet)."""
    from genmed.train.checkpoint import list_checkpoints

    found = list_checkpoints(folder / "checkpoints")
    return found[-1].step if found else 0


def train_resumable(tcfg, dataset, label: str) -> float:
    """Train run `tcfg.out` to `tcfg.steps`, continuing from its newest checkpoint (the engine
    writes one every 10 minutes); each segment's wall time is kept in RUN/segments.json.
    Returns the whole run's training seconds over all its segments."""
    from genmed.train import train

    folder = Path(tcfg.out)
    log = folder / "segments.json"
    start = done_steps(folder)
    if start < tcfg.steps:
        print(f"{label}: from step {start} to {tcfg.steps}", flush=True)
        t0 = time.perf_counter()
        result = train(tcfg, dataset=dataset, resume=start > 0)
        segments = json.loads(log.read_text()) if log.is_file() else []
        segments.append({"from_step": start, "to_step": result.step,
                         "seconds": round(time.perf_counter() - t0, 1), "img_per_s": result.img_per_s})
        write_json(log, segments)
    return round(sum(s["seconds"] for s in json.loads(log.read_text())), 1)


def train_arm(seed: int, arm: str) -> None:
    """Train (or continue) `arm` at `seed` to 48,000 images (`train_resumable`)."""
    import torch

    from genmed.compare.runner import _train_config, load_splits

    torch.set_num_threads(1)
    cfg = compare_config(seed)
    folder = run_dir(seed, arm)
    if done_steps(folder) >= STEPS:
        print(f"[seed {seed}] {arm}: finished", flush=True)
        return
    train_ds, _, _ = load_splits(cfg)
    train_resumable(_train_config(arm, cfg, STEPS, folder), train_ds, f"[seed {seed}] {arm}")


def link_gan(seed: int) -> None:
    """PARTS/seed<N>/runs/gan: the slow-G budget run's 1,500-step checkpoint as a run of its own
    (hard links), with the config that checkpoint recorded (steps 1,500; the budget run's
    resume raised `steps` and `keep_checkpoints` after it)."""
    import os
    import shutil

    from genmed.config import save_config
    from genmed.train.checkpoint import list_checkpoints, read_meta
    from genmed.train.run import load_config_of

    src = GAN_RUNS / f"gan64_s{seed}" / "gan"
    folder = run_dir(seed, "gan")
    if done_steps(folder) == STEPS:
        return
    if not (src / "checkpoints" / f"step-{STEPS:08d}.json").is_file():
        raise SystemExit(f"{src}: no {STEPS}-step checkpoint (run benchmarks/gan_budget.py "
                         f"--recipe slow_g --seed {seed} --max-multiple 4)")
    (folder / "checkpoints").mkdir(parents=True, exist_ok=True)
    for f in (src / "checkpoints").glob(f"step-{STEPS:08d}.*"):
        os.link(f, folder / "checkpoints" / f.name)
    shutil.copyfile(src / "data.json", folder / "data.json")
    recorded = read_meta(list_checkpoints(folder / "checkpoints")[0])["config"]
    save_config(load_config_of(src).replace(steps=STEPS, out=str(folder),
                                            keep_checkpoints=recorded["keep_checkpoints"]),
                folder / "config.yaml")


def train_seconds(seed: int, arm: str) -> float:
    """The whole run's training wall time over its segments (the gan arm: its budget study's)."""
    if arm == "gan":
        return json.loads((GAN_RUNS / f"gan64_s{seed}" / f"train_to_{STEPS}.json").read_text())["wall_seconds"]
    return round(sum(s["seconds"] for s in json.loads((run_dir(seed, arm) / "segments.json").read_text())), 1)


def measure_arm(seed: int, arm: str) -> None:
    """`genmed.compare` on the finished run of `arm` -> PARTS/seed<N>/measured/<arm>/part.json."""
    from dataclasses import replace

    import numpy as np
    import torch

    from genmed.compare import compare

    from families_64 import measure_extra  # a sibling: benchmarks/ is on sys.path

    torch.set_num_threads(1)
    out = PARTS / f"seed{seed}" / "measured" / arm
    cfg = replace(compare_config(seed), families=(arm,), runs=(str(run_dir(seed, arm)),), out=str(out))
    result = compare(cfg, progress=lambda m: print(f"[seed {seed}] {m}", flush=True))
    with np.load(out / "samples.npz") as samples:
        result["extra"] = measure_extra(cfg, dict(samples), run_dir(seed, "vae"))
    result["families"][arm]["train_seconds"] = train_seconds(seed, arm)
    write_json(out / "part.json", result)


def assemble(seed: int) -> bool:
    """PARTS/seed<N>/part.json and samples.npz from the measured arms, in families_64's form
    (False while an arm is missing)."""
    import numpy as np

    from genmed.fileio import atomic_path

    folder = PARTS / f"seed{seed}"
    found = {arm: folder / "measured" / arm for arm in ARMS}
    if not all((f / "part.json").is_file() for f in found.values()):
        return False
    measured = {arm: json.loads((f / "part.json").read_text()) for arm, f in found.items()}
    part = dict(measured["gan"])
    part["families"] = {arm: m["families"][arm] for arm, m in measured.items()}
    part["extra"] = {"real": part["extra"]["real"], **{arm: m["extra"][arm] for arm, m in measured.items()}}
    part["config"] = {**part["config"], "families": list(ARMS), "out": str(folder),
                      "runs": [str(run_dir(seed, arm)) for arm in ARMS]}
    part["seconds"] = round(sum(m["seconds"] for m in measured.values()), 1)
    samples = {}
    for arm, f in found.items():
        with np.load(f / "samples.npz") as s:
            samples[arm] = s[arm]
    with atomic_path(folder / "samples.npz") as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **samples)
    write_json(folder / "part.json", part)
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--train", default="", help="arms to train or continue, in order, per seed")
    ap.add_argument("--measure", action="store_true", help="measure the finished arms of --seeds")
    ap.add_argument("--merge", action="store_true", help="pool the seeds with every arm measured")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.train:
        arms = args.train.split(",")
        if not set(arms) <= set(TRAINED):
            raise SystemExit(f"--train takes {', '.join(TRAINED)}")
        for arm in arms:
            for seed in seeds:
                train_arm(seed, arm)
    if args.measure:
        for seed in seeds:
            link_gan(seed)
            for arm in ARMS:
                if (PARTS / f"seed{seed}" / "measured" / arm / "part.json").is_file():
                    continue
                if done_steps(run_dir(seed, arm)) < STEPS:
                    print(f"[seed {seed}] {arm}: not finished, not measured", flush=True)
                    continue
                measure_arm(seed, arm)
            print(f"[seed {seed}] all arms measured: {assemble(seed)}", flush=True)
    if args.merge:
        import families_64

        result = families_64.merge(PARTS)
        result["gan_arm"] = ("benchmarks/gan_budget.py --recipe slow_g: the EMA generator of its "
                             f"{STEPS}-step checkpoint (G lr 5e-5, D 2e-4)")
        write_json(ROOT / "benchmarks" / "results" / "families_48k.json", result)
        families_64.figures(result, folder=PARTS, stem="families48k", labels=LABELS)
        print(json.dumps(result["targets"], indent=1))
        print(families_64.markdown(result))


if __name__ == "__main__":
    main()
