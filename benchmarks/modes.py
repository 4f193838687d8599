"""Full mode-collapse benchmark (VEEGAN/PacGAN settings) -> benchmarks/results/modes.json.

Every variant (exact samples, diffusion, DCGAN, hinge+SN GAN, VAE; MLP backbones, one engine)
on the ring of 8 and grid of 25, >= 5 seeds, 100,000 samples per run, mean +- s.e.; the table
sits next to PacGAN's Table 1 in docs/evaluation.md, the samples in docs/img/compare_modes.png.

    python benchmarks/modes.py                                  # everything, in one process
    python benchmarks/modes.py --variants diffusion --mixtures ring --part diff-ring   # one part
    python benchmarks/modes.py --merge                          # parts -> modes.json + figure
    python benchmarks/modes.py --variants gan_mbstd4 --name mbstd   # -> results/modes_mbstd.json
Parts let a loaded machine run cells side by side; --merge joins them in the default order.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from genmed.compare.modes import (
    EXACT,
    VARIANTS,
    ModeBenchConfig,
    plot_mode_samples,
    run_mode_benchmark,
    table_rows,
)
from genmed.fileio import write_json
from genmed.versions import machine

ROOT = Path(__file__).resolve().parents[1]

RESULTS = ROOT / "benchmarks" / "results"
PARTS = ROOT / "runs" / "bench_modes" / "parts"  # scratch (git-ignored)


def merge() -> dict:
    """Join part files (same config apart from variants/mixtures) into one result."""
    parts = [json.loads(p.read_text()) for p in sorted(PARTS.glob("*.json"))]
    if not parts:
        raise SystemExit(f"no parts in {PARTS}")
    mixtures = [m for m in ("ring", "grid") if any(m in p["config"]["mixtures"] for p in parts)]
    variants = [v for v in (EXACT, *VARIANTS) if any(v in p["config"]["variants"] for p in parts)]
    key = {(m, v): i for i, (m, v) in enumerate((m, v) for m in mixtures for v in variants)}
    table = sorted((r for p in parts for r in p["table"]), key=lambda r: key[(r["mixture"], r["variant"])])
    plot: dict = {}
    for p in parts:
        for m, cells in p["plot_samples"].items():
            plot.setdefault(m, {}).update(cells)
    config = dict(parts[0]["config"], mixtures=mixtures, variants=variants)
    return {"config": config, "table": table, "published": parts[0]["published"],
            "runs": [r for p in parts for r in p["runs"]], "plot_samples": plot,
            "seconds": sum(p["seconds"] for p in parts), "machine": parts[0]["machine"],
            "parts": len(parts)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", default=",".join(ModeBenchConfig().variants))
    ap.add_argument("--mixtures", default="ring,grid")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=8000)
    ap.add_argument("--n-samples", type=int, default=100_000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--part", default="", help="write runs/bench_modes/parts/PART.json")
    ap.add_argument("--merge", action="store_true")
    ap.add_argument("--name", default="", help="write results/modes_NAME.json (no figure), not modes.json")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.merge:
        result = merge()
    else:
        cfg = ModeBenchConfig(variants=tuple(args.variants.split(",")), mixtures=tuple(args.mixtures.split(",")),
                              seeds=args.seeds, steps=args.steps, n_samples=args.n_samples,
                              out=str(ROOT / "runs" / "bench_modes"))
        result = run_mode_benchmark(cfg, progress=lambda m: print(m, flush=True))
        result["machine"] = machine()
        if args.part:
            write_json(PARTS / f"{args.part}.json", result)
            return
    if not args.name:
        plot_mode_samples(result, ROOT / "docs" / "img" / "compare_modes.png")
    result.pop("plot_samples")  # 2,000 points per cell: in the figure, not in the JSON
    write_json(RESULTS / f"modes{'_' + args.name if args.name else ''}.json", result)
    rows = table_rows(result)
    cols = list(rows[0])
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r.get(c, "")) for c in cols) + " |")


if __name__ == "__main__":
    main()
