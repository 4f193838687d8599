"""Phantom throughput: 2D slices/s at 64x64 and 3D volumes/s at 64^3, one thread.

Writes benchmarks/results/phantom.json. Reports the best of `REPEATS` runs, both wall-clock
and process CPU time (CPU time is what one core delivers when the machine is shared).
Run: `python benchmarks/phantom.py` (or `make bench`).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPEATS = 3
OUT = Path(__file__).resolve().parent / "results" / "phantom.json"


def _best(fn, count: int) -> dict[str, float]:
    walls, cpus = [], []
    for _ in range(REPEATS):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return {"per_s_wall": round(count / min(walls), 1), "per_s_cpu": round(count / min(cpus), 1),
            "seconds_wall_best": round(min(walls), 4)}


def main() -> dict:
    import torch

    from genmed.data.phantom import PhantomConfig, make_slices, make_volumes
    from genmed.fileio import write_json
    from genmed.versions import machine

    torch.set_num_threads(1)
    make_slices(4, 8)  # warm-up (imports, caches)
    n_pat, per = 250, 8
    slices = _best(lambda: make_slices(n_pat, per, PhantomConfig(size=64), seed=0), n_pat * per)
    n_vol = 8
    volumes = _best(lambda: make_volumes(n_vol, PhantomConfig(size=64), seed=0), n_vol)
    result = {
        "benchmark": "phantom",
        "slices_2d_64": {"n": n_pat * per, **slices, "fields": "image, clean, image_nc, clean_nc, masks, tissue"},
        "volumes_3d_64": {"n": n_vol, **volumes, "shape": [64, 64, 64]},
        "target_slices_per_s": 2000,
        "machine": machine(),
    }
    write_json(OUT, result)
    print(f"2D 64x64: {slices['per_s_wall']} slices/s wall, {slices['per_s_cpu']} slices/s CPU; "
          f"3D 64^3: {volumes['per_s_wall']} volumes/s wall, {volumes['per_s_cpu']} volumes/s CPU -> {OUT}")
    return result


if __name__ == "__main__":
    main()
