"""Shared runner of the `benchmarks/apps_*.py` scripts: every field of an application's config
dataclass becomes a command-line option (`--n-test-patients 24`, tuples comma-separated:
`--methods noisy,unet`), one torch thread by default (`--threads`), and the JSON records the
exact config, the command line, the thread count, the wall time (s) and `versions.machine()`.

Figures are copied to docs/img/apps_<name>.png; the JSON goes to benchmarks/results/.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import typing  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _parse_bool(text: str) -> bool:
    if text.lower() not in ("true", "false", "1", "0"):
        raise argparse.ArgumentTypeError(f"{text!r} is not true/false")
    return text.lower() in ("true", "1")


def _parser_for(cls: type, defaults: dict[str, Any], doc: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    hints = typing.get_type_hints(cls)
    base = cls()
    for f in dataclasses.fields(cls):
        default = defaults.get(f.name, getattr(base, f.name))
        opt = "--" + f.name.replace("_", "-")
        if isinstance(default, tuple):
            elem = type(default[0]) if default else str
            p.add_argument(opt, default=default, help=str(hints[f.name]),
                           type=lambda s, elem=elem: tuple(elem(v) for v in s.split(",") if v))
        else:
            p.add_argument(opt, default=default, type=_parse_bool if isinstance(default, bool) else type(default))
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--out", type=Path, default=None, help="run folder (default runs/bench_apps_NAME)")
    return p


def run(name: str, cls: type, runner: Callable[..., dict], figures: tuple[str, ...],
        defaults: dict[str, Any], doc: str, figure_prefix: str = "apps_") -> dict:
    """Parse argv into `cls(**...)`, run `runner(cfg, out)`, write the JSON and copy figures
    to docs/img/<figure_prefix><figure>."""
    args = _parser_for(cls, defaults, doc).parse_args()
    import torch

    from genmed.fileio import write_json
    from genmed.versions import machine

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})
    out = args.out or ROOT / "runs" / f"bench_apps_{name}"
    t0 = time.perf_counter()
    res = runner(cfg, out)
    res["benchmark"] = {"script": f"benchmarks/apps_{name}.py", "argv": sys.argv[1:],
                        "torch_threads": torch.get_num_threads(),
                        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                        "wall_s": time.perf_counter() - t0}
    res["machine"] = machine()
    write_json(ROOT / "benchmarks" / "results" / f"apps_{name}.json", res)
    for fig in figures:
        shutil.copy(Path(out) / fig, ROOT / "docs" / "img" / f"{figure_prefix}{fig}")
    return res
