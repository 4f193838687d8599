"""Per-class map-guidance weights read off runs with one weight (issue 16, 2-D lesion kind).

Each slice's draw depends only on its own map-guidance weight (the same noise, the network
called per sample; `tests/models/test_map_guidance.py` checks it), so the result of giving maps
with a lesion the weight W_L and maps without one W_H is, slice by slice, the run with W_L on
the lesion maps and the run with W_H on the others. This script reads the per-slice kind
predictions of `apps_generate_from_mask_256.py --map-guidance W` runs on the same patients and
tabulates every pair (W_L, W_H), with the rule fixed before the runs: the highest kind accuracy,
ties to the smaller W_L + W_H.

    PYTHONPATH=src python benchmarks/apps_generate_from_mask_256_weights.py RUN_W0.json RUN_W025.json ... \
        --out results/apps_generate_from_mask_256_weights.json

`--subset START STOP RUN.json` instead prints one run's kind accuracy (generated and real, with
Wilson 95% intervals) on the slices START:STOP, e.g. the patients a test set gained later
(8 slices per patient).
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
from apps_generate_from_mask_256 import kind_scores


def load(paths: list[Path]) -> tuple[dict[float, np.ndarray], np.ndarray, np.ndarray]:
    """{weight: per-slice predicted kind} of one-weight runs, and the slices' requested kinds
    and lesion flags (which must agree across runs: the same patients)."""
    preds, kinds, lesion = {}, None, None
    for path in paths:
        r = json.loads(path.read_text())
        s = r["settings"]
        healthy = s.get("map_guidance_healthy")
        if healthy is not None and healthy != s["map_guidance"]:
            raise SystemExit(f"{path}: a run with one weight is needed (map_guidance_healthy {healthy})")
        k, les = np.array(r["slice_kinds"]), np.array(r["map_has_lesion"])
        if kinds is not None and (not np.array_equal(k, kinds) or not np.array_equal(les, lesion)):
            raise SystemExit(f"{path}: not the same slices as {paths[0]}")
        kinds, lesion = k, les
        preds[float(s["map_guidance"])] = np.array(r["generated"]["kind_predicted"])
    return preds, kinds, lesion


def table(preds: dict[float, np.ndarray], kinds: np.ndarray, lesion: np.ndarray) -> list[dict]:
    """Kind accuracy, per-kind recall and balanced accuracy of every (W_L, W_H) pair, best first
    by the rule (accuracy, then the smaller W_L + W_H)."""
    rows = [{"w_lesion": w_l, "w_healthy": w_h, **kind_scores(np.where(lesion, preds[w_l], preds[w_h]), kinds)}
            for w_l, w_h in itertools.product(sorted(preds), repeat=2)]
    return sorted(rows, key=lambda r: (-r["kind_accuracy"], r["w_lesion"] + r["w_healthy"]))


def subset(path: Path, start: int, stop: int) -> dict:
    """Kind accuracy [Wilson 95%], recall and balanced accuracy of one run's generated and real
    slices start:stop (`kind_scores`), and their accuracy ratio."""
    r = json.loads(path.read_text())
    kinds = np.array(r["slice_kinds"])[start:stop]
    out = {"slices": [start, stop], "kinds": np.bincount(kinds, minlength=3).tolist()}
    for name in ("generated", "real"):
        out[name] = kind_scores(np.array(r[name]["kind_predicted"])[start:stop], kinds)
    out["ratio"] = out["generated"]["kind_accuracy"] / out["real"]["kind_accuracy"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, nargs="+", help="JSONs of runs with one weight each, same patients")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--subset", type=int, nargs=2, metavar=("START", "STOP"),
                    help="print one run's kind accuracy on slices START:STOP instead")
    args = ap.parse_args()
    if args.subset is not None:
        print(json.dumps(subset(args.runs[0], *args.subset), indent=1))
        return
    if args.out is None:
        ap.error("--out is needed to tabulate weight pairs")
    preds, kinds, lesion = load(args.runs)
    rows = table(preds, kinds, lesion)
    result = {"benchmark": "apps_generate_from_mask_256_weights", "runs": [str(p) for p in args.runs],
              "n_slices": len(kinds), "kinds": np.bincount(kinds, minlength=3).tolist(),
              "rule": "highest kind accuracy; ties to the smaller w_lesion + w_healthy",
              "chosen": rows[0], "pairs": rows}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for r in rows:
        print(f"W_L {r['w_lesion']:<5} W_H {r['w_healthy']:<5} acc {r['kind_accuracy']:.3f} "
              f"recall {' / '.join(f'{v:.2f}' for v in r['kind_recall'].values())} "
              f"balanced {r['kind_balanced_accuracy']:.3f}")


if __name__ == "__main__":
    main()
