"""Error analysis by parts (the source's Part D.3; Ng, "Machine Learning Yearning", ch. 53-57).

A pipeline A -> B -> ... -> Z makes an error. Replace A by its ground truth: if the final
output is now right, A is to blame. Otherwise replace A and B, and so on; an error no perfect
upstream part fixes is the last component's. The input has one column per upstream
component, `y_pred_perfect_upto_<name>`: the final prediction with that component and every
one before it replaced by ground truth. A perfect part that turns a right answer wrong is
reported too: it means the later parts were tuned to the earlier part's mistakes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from genmed.errors import UserError, check_choice
from genmed.erroranalysis.tables import PERFECT_PREFIX

PartsFormat = Literal["json", "table"]


@dataclass(frozen=True)
class ComponentShare:
    """Errors attributed to one component; `made_worse`: ids a perfect version breaks."""

    name: str
    n_attributed: int
    share: float  # n_attributed / n_errors
    made_worse: tuple[str, ...] = ()


@dataclass(frozen=True)
class PartsReport:
    """Attribution of every error to one pipeline component, in pipeline order."""

    n_errors: int
    components: tuple[ComponentShare, ...]
    attribution: pd.Series  # error id -> component name

    def recommendation(self) -> str:
        """One line naming the component to fix first."""
        if self.n_errors == 0:
            return "No errors: nothing to attribute."
        top = max(self.components, key=lambda c: c.n_attributed)
        return (
            f"Fix '{top.name}' first: it is to blame for {top.n_attributed} of "
            f"{self.n_errors} errors ({top.share:.1%})."
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON form: n_errors, components [{name, n_attributed, share}], recommendation, made_worse."""
        return {
            "n_errors": self.n_errors,
            "components": [
                {"name": c.name, "n_attributed": c.n_attributed, "share": c.share}
                for c in self.components
            ],
            "recommendation": self.recommendation(),
            "made_worse": [
                {"component": c.name, "n": len(c.made_worse), "ids": list(c.made_worse)}
                for c in self.components
                if c.made_worse
            ],
        }

    def to_text(self) -> str:
        """Human table in percent plus the made-worse lines and the recommendation."""
        width = max(len("component"), *(len(c.name) for c in self.components))
        lines = [f"errors {self.n_errors}", f"{'component':<{width}}  errors   share"]
        for c in self.components:
            lines.append(f"{c.name:<{width}}  {c.n_attributed:>6}  {c.share:>6.1%}")
        for c in self.components:
            if c.made_worse:
                shown = ", ".join(c.made_worse[:5]) + (" ..." if len(c.made_worse) > 5 else "")
                lines.append(
                    f"Warning: a perfect '{c.name}' (and all before it) makes {len(c.made_worse)} "
                    f"correct example(s) wrong: {shown}"
                )
        lines.append(self.recommendation())
        return "\n".join(lines)

    def render(self, fmt: PartsFormat = "json") -> str:
        """The report as JSON or a text table."""
        import json

        check_choice("format", fmt, ("json", "table"))
        return json.dumps(self.to_dict(), indent=2) if fmt == "json" else self.to_text()


def component_order(parts: pd.DataFrame, order: Sequence[str] | None = None) -> list[str]:
    """Pipeline components in order; the last one needs no `y_pred_perfect_upto_` column.

    Without `order`, upstream components follow the file's column order and the last is
    called "last component".
    """
    upstream = [c[len(PERFECT_PREFIX):] for c in parts.columns if c.startswith(PERFECT_PREFIX)]
    if order is None:
        return upstream + ["last component"]
    order = [o.strip() for o in order if o.strip()]
    if len(set(order)) != len(order):
        raise UserError(f"--order names a component twice: {','.join(order)}")
    if len(order) < 2:
        raise UserError("--order needs at least two components (upstream ones and the last)")
    missing = [o for o in order[:-1] if o not in upstream]
    if missing:
        raise UserError(
            f"--order: no column {PERFECT_PREFIX}{missing[0]} in the parts file "
            f"(found components: {', '.join(upstream)})"
        )
    extra = [u for u in upstream if u not in order]
    if extra:
        raise UserError(f"--order does not place component(s) {', '.join(extra)} found in the file")
    return order


def error_by_parts(parts: pd.DataFrame, order: Sequence[str] | None = None) -> PartsReport:
    """Attribute each error to the earliest component whose perfect version fixes it."""
    comps = component_order(parts, order)
    truth = parts["y_true"]
    errors = parts.index[parts["y_pred"] != truth]
    attribution = pd.Series(comps[-1], index=errors, dtype=object, name="component")
    unresolved = pd.Series(True, index=errors)
    for name in comps[:-1]:
        fixed = (parts.loc[errors, PERFECT_PREFIX + name] == truth.loc[errors]) & unresolved
        attribution[fixed] = name
        unresolved &= ~fixed
    correct = parts["y_pred"] == truth
    n_err = len(errors)
    shares = []
    for name in comps:
        col = PERFECT_PREFIX + name
        worse: tuple[str, ...] = ()
        if col in parts.columns and name != comps[-1]:
            worse = tuple(parts.index[correct & (parts[col] != truth)])
        k = int((attribution == name).sum())
        shares.append(ComponentShare(name, k, k / n_err if n_err else 0.0, worse))
    return PartsReport(n_errors=n_err, components=tuple(shares), attribution=attribution)
