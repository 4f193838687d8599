"""Honest comparison of the three families (issue 4).

    from genmed.compare import CompareConfig, compare, ModeBenchConfig, run_mode_benchmark
    result = compare(CompareConfig(out="runs/compare"))          # report.html + metrics.json
    table = run_mode_benchmark(ModeBenchConfig(out="runs/modes")) # ring / grid mode collapse

Names are imported lazily (PEP 562) so that `genmed --help` does not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "CompareConfig": "config",
    "compare": "api",
    "ModeBenchConfig": "modes",
    "run_mode_benchmark": "modes",
    "plot_mode_samples": "modes",
    "table_rows": "modes",
    "sampler_study": "samplers",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'genmed.compare' has no attribute {name!r}")
    return getattr(importlib.import_module(f"genmed.compare.{_WHERE[name]}"), name)


def __dir__() -> list[str]:
    return __all__
