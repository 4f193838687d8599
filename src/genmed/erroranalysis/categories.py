"""Error categories with ceilings (the source's Part D.1; Ng, "Machine Learning Yearning", ch. 14-19).

Review a sample of misclassified dev examples and tag each with zero or more categories. For
a category with `count` of the `n_reviewed` reviewed errors, fixing it completely can remove at
most `ceiling = error_rate * count / n_reviewed` of the dev error. The share is a proportion
estimated from a small sample, so each comes with a Wilson score interval (Wilson, 1927).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from genmed.errors import check_choice
from genmed.metrics.stats import wilson_interval

Format = Literal["table", "json", "csv"]
FORMATS = ("table", "json", "csv")


@dataclass(frozen=True)
class Category:
    """One tag: how many reviewed errors carry it, its share (fraction) and ceiling (fraction)."""

    tag: str
    count: int
    share: float  # count / n_reviewed
    ceiling: float  # error_rate * share: the most of the dev error fixing this tag can remove
    share_ci: tuple[float, float]  # Wilson interval of the share
    ceiling_ci: tuple[float, float]  # share_ci scaled by the (measured) error rate


@dataclass(frozen=True)
class CategoryTable:
    """The category table; `warnings` lists tags that were reported and not counted."""

    n_examples: int
    n_errors: int
    error_rate: float
    n_reviewed: int
    categories: tuple[Category, ...]
    confidence: float = 0.95
    warnings: tuple[str, ...] = field(default=())

    @property
    def overlapping(self) -> bool:
        """True when some example carries several tags (shares then sum to more than 1)."""
        return sum(c.count for c in self.categories) > self.n_reviewed

    def recommendation(self) -> str:
        """One line naming the category with the largest ceiling."""
        if not self.categories:
            return "No tagged errors yet: review and tag some misclassified eyeball examples."
        top = self.categories[0]
        return (
            f"Work on '{top.tag}' first: fixing it removes at most {_pct(top.ceiling)} "
            f"of the {_pct(self.error_rate)} dev error."
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON form: n_examples, n_errors, error_rate, n_reviewed, categories (fractions).

        Each category also carries `share_ci` and `ceiling_ci`: [low, high] Wilson intervals
        at `confidence` (95% by default).
        """
        return {
            "n_examples": self.n_examples,
            "n_errors": self.n_errors,
            "error_rate": self.error_rate,
            "n_reviewed": self.n_reviewed,
            "categories": [
                {
                    "tag": c.tag,
                    "count": c.count,
                    "share_of_reviewed_errors": c.share,
                    "ceiling": c.ceiling,
                    "share_ci": list(c.share_ci),
                    "ceiling_ci": list(c.ceiling_ci),
                }
                for c in self.categories
            ],
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per category (fractions), the CSV form."""
        return pd.DataFrame(
            [
                {
                    "tag": c.tag,
                    "count": c.count,
                    "share_of_reviewed_errors": c.share,
                    "share_ci_low": c.share_ci[0],
                    "share_ci_high": c.share_ci[1],
                    "ceiling": c.ceiling,
                    "ceiling_ci_low": c.ceiling_ci[0],
                    "ceiling_ci_high": c.ceiling_ci[1],
                }
                for c in self.categories
            ],
            columns=[
                "tag", "count", "share_of_reviewed_errors", "share_ci_low", "share_ci_high",
                "ceiling", "ceiling_ci_low", "ceiling_ci_high",
            ],
        )

    def to_text(self) -> str:
        """Human table in percent, a note on overlapping tags and the recommendation."""
        level = f"{round(self.confidence * 100)}% CI"
        lines = [
            f"dev examples {self.n_examples}, errors {self.n_errors} "
            f"(error rate {_pct(self.error_rate)}), reviewed errors {self.n_reviewed}",
        ]
        width = max([len("tag")] + [len(c.tag) for c in self.categories])
        lines.append(f"{'tag':<{width}}  {'count':>5}  {'share':>6}  {level:<17}  {'ceiling':>7}")
        for c in self.categories:
            ci = f"[{_pct(c.share_ci[0], 1)}, {_pct(c.share_ci[1], 1)}]"
            lines.append(
                f"{c.tag:<{width}}  {c.count:>5}  {_pct(c.share, 1):>6}  {ci:<17}  {_pct(c.ceiling):>7}"
            )
        if self.overlapping:
            total = sum(c.share for c in self.categories)
            lines.append(
                f"Note: tags overlap; shares sum to {_pct(total, 1)} because an example can "
                "carry several tags."
            )
        lines.append(self.recommendation())
        return "\n".join(lines)

    def render(self, fmt: Format = "table") -> str:
        """The table as text in `fmt` (table, json or csv)."""
        import json

        check_choice("format", fmt, FORMATS)
        if fmt == "json":
            return json.dumps(self.to_dict(), indent=2)
        if fmt == "csv":
            buf = io.StringIO()
            self.to_frame().to_csv(buf, index=False)
            return buf.getvalue().rstrip("\n")
        return self.to_text()


def _pct(x: float, digits: int = 2) -> str:
    return f"{100 * x:.{digits}f}%"


def category_table(
    predictions: pd.DataFrame, tags: pd.DataFrame, *, confidence: float = 0.95
) -> CategoryTable:
    """Build the table from checked predictions (`load_predictions`) and tags (`load_tags`).

    Reviewed errors are the misclassified examples named in `tags` (a row with an empty tag
    marks an example reviewed with no category). Tags on unknown ids or on correctly
    classified examples are left out and reported in `warnings`.
    """
    n_examples = len(predictions)
    errors = predictions.index[predictions["error"]]
    error_set = set(errors)
    n_errors = len(errors)
    known = set(predictions.index)
    warnings = []
    unknown = sorted(set(tags["id"]) - known)
    if unknown:
        warnings.append(
            f"{len(unknown)} tagged id(s) not in the predictions, not counted: {_few(unknown)}"
        )
    not_err = sorted(set(tags["id"]) & (known - error_set))
    if not_err:
        warnings.append(
            f"{len(not_err)} tagged id(s) are correctly classified (not errors), not counted: "
            f"{_few(not_err)}"
        )
    kept = tags[tags["id"].isin(error_set)]
    n_reviewed = int(kept["id"].nunique())
    counts = kept[kept["tag"] != ""].groupby("tag")["id"].nunique()
    cats = []
    for tag, count in counts.items():
        count = int(count)
        share = count / n_reviewed
        # One division of integer products, so 15% x 7/100 prints as 0.0105 exactly.
        ceiling = (n_errors * count) / (n_examples * n_reviewed)
        lo, hi = wilson_interval(count, n_reviewed, confidence)
        rate = n_errors / n_examples
        cats.append(Category(str(tag), count, share, ceiling, (lo, hi), (rate * lo, rate * hi)))
    cats.sort(key=lambda c: (-c.ceiling, c.tag))
    return CategoryTable(
        n_examples=n_examples,
        n_errors=n_errors,
        error_rate=n_errors / n_examples,
        n_reviewed=n_reviewed,
        categories=tuple(cats),
        confidence=confidence,
        warnings=tuple(warnings),
    )


def _few(items: list[str], k: int = 5) -> str:
    return ", ".join(items[:k]) + (" ..." if len(items) > k else "")
