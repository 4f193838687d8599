"""Eyeball and blackbox dev sets (the source's Part D.2; Ng, "Machine Learning Yearning", ch. 17-19).

The eyeball set is the part of dev that people look at; the blackbox set is only measured.
The eyeball set is sized so that it is expected to hold about the requested number of errors
at the current error rate, and whole groups (patients) go to one set, so no patient is seen
in both. When people have tuned to the eyeball set, its error drops below the blackbox
error; `overfit_test` says whether the gap is larger than chance (one-sided Fisher exact test).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import fisher_exact

from genmed.errors import UserError, check_positive
from genmed.metrics.stats import wilson_interval


@dataclass(frozen=True)
class Split:
    """The split (`sets`: Series id -> eyeball/blackbox) and how it was sized."""

    sets: pd.Series
    requested_errors: int
    expected_errors: float  # eyeball size x dev error rate
    eyeball_errors: int  # errors actually in the eyeball set
    n_groups: int

    def to_frame(self) -> pd.DataFrame:
        """The `id,set` table written by `genmed errors split`."""
        return pd.DataFrame({"id": self.sets.index, "set": self.sets.to_numpy()})

    def describe(self) -> str:
        """One line: sizes and errors of both sets."""
        n_eye = int((self.sets == "eyeball").sum())
        return (
            f"eyeball {n_eye} examples ({self.eyeball_errors} errors; expected "
            f"{self.expected_errors:.1f}, asked {self.requested_errors}), blackbox "
            f"{len(self.sets) - n_eye} examples; {self.n_groups} groups kept whole"
        )


def make_split(
    predictions: pd.DataFrame,
    eyeball_errors: int = 100,
    *,
    group_col: str | None = None,
    seed: int = 0,
) -> Split:
    """Split dev into eyeball and blackbox sets, keeping every group in one set.

    Groups are shuffled with `seed` and added to the eyeball set until its size is closest to
    `n * eyeball_errors / n_errors` examples, so it is expected to hold about `eyeball_errors`
    errors. Raises `UserError` when the dev set has too few errors to leave a blackbox set.
    """
    check_positive("eyeball_errors", eyeball_errors)
    n = len(predictions)
    n_err = int(predictions["error"].sum())
    if n_err == 0:
        raise UserError("predictions have no errors: nothing to look at in an eyeball set")
    if eyeball_errors >= n_err:  # checked in integers: a huge request rounds in `target` below
        _refuse_no_blackbox(n_err, n, eyeball_errors)
    target = n * eyeball_errors / n_err
    if group_col is None:
        groups = predictions["id"].to_numpy()
    else:
        if group_col not in predictions.columns:
            raise UserError(f"group column {group_col!r} is not in the predictions file")
        groups = predictions[group_col].to_numpy()
    uniq, inverse, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    if len(uniq) < 2:
        raise UserError(f"only one group in {group_col!r}: cannot keep groups apart")
    order = np.random.default_rng(seed).permutation(len(uniq))
    cum = np.cumsum(sizes[order])
    k = int(np.argmin(np.abs(cum - target))) + 1  # groups in the eyeball set
    if k >= len(uniq):
        _refuse_no_blackbox(n_err, n, eyeball_errors)
    eye_groups = np.zeros(len(uniq), dtype=bool)
    eye_groups[order[:k]] = True
    is_eye = eye_groups[inverse]
    sets = pd.Series(np.where(is_eye, "eyeball", "blackbox"), index=predictions.index, name="set")
    return Split(
        sets=sets,
        requested_errors=eyeball_errors,
        expected_errors=float(is_eye.sum() * n_err / n),
        eyeball_errors=int(predictions["error"].to_numpy()[is_eye].sum()),
        n_groups=len(uniq),
    )


def _refuse_no_blackbox(n_err: int, n: int, eyeball_errors: int) -> None:
    """Raise the `UserError` for an eyeball set that would take the whole dev set."""
    raise UserError(
        f"the dev set has {n_err} errors in {n} examples: an eyeball set with "
        f"{eyeball_errors} errors would leave no blackbox set; ask for fewer"
    )


def eyeball_ids(predictions: pd.DataFrame, sets: pd.Series) -> list[str]:
    """Ids of predictions in the eyeball set (ids absent from the split are not eyeball)."""
    in_eye = sets.reindex(predictions.index).eq("eyeball").to_numpy()
    return list(predictions.index[in_eye])


def sample_errors(
    predictions: pd.DataFrame, sets: pd.Series, n: int = 100, *, seed: int = 0
) -> pd.DataFrame:
    """Up to `n` misclassified examples drawn at random from the eyeball set only."""
    check_positive("n", n)
    eye = predictions.loc[eyeball_ids(predictions, sets)]
    errs = eye[eye["error"]]
    if len(errs) > n:
        errs = errs.sample(n=n, random_state=seed)
    return errs.drop(columns=["error"]).reset_index(drop=True)


def overfit_test(
    predictions: pd.DataFrame, sets: pd.Series, *, alpha: float = 0.05
) -> dict[str, Any]:
    """Compare eyeball vs blackbox error rates.

    Null hypothesis: both sets have the same error rate. Alternative: the eyeball set's error
    is lower (it has been overfit). One-sided Fisher exact test on the 2x2 table
    [[eyeball errors, eyeball correct], [blackbox errors, blackbox correct]]. Examples are
    treated as independent; with many slices per patient the p-value is optimistic.
    """
    aligned = sets.reindex(predictions.index)
    rows = {}
    for name in ("eyeball", "blackbox"):
        mask = aligned.eq(name).to_numpy()
        n = int(mask.sum())
        if n == 0:
            raise UserError(f"the split has no {name} examples among the predictions")
        k = int(predictions["error"].to_numpy()[mask].sum())
        rows[name] = {"n": n, "n_errors": k, "error_rate": k / n, "ci": list(wilson_interval(k, n))}
    e, b = rows["eyeball"], rows["blackbox"]
    table = [[e["n_errors"], e["n"] - e["n_errors"]], [b["n_errors"], b["n"] - b["n_errors"]]]
    p = float(fisher_exact(table, alternative="less").pvalue)
    overfit = p < alpha
    gap = b["error_rate"] - e["error_rate"]
    if overfit:
        msg = (
            f"eyeball error {e['error_rate']:.2%} is below blackbox {b['error_rate']:.2%} "
            f"(p={p:.3g} < {alpha}): the eyeball set looks overfit; refresh it with new examples"
        )
    else:
        msg = (
            f"gap {gap:+.2%} (blackbox minus eyeball) is within chance (p={p:.3g} >= {alpha}); "
            "the eyeball set is still fine"
        )
    return {
        "eyeball": e,
        "blackbox": b,
        "gap": gap,
        "p_value": p,
        "alpha": alpha,
        "overfit": overfit,
        "test": "one-sided Fisher exact (eyeball error < blackbox error)",
        "message": msg,
    }
