"""Patient-level splits: every slice of a patient lands in the same split, never in two."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from genmed.errors import UserError

SPLITS: tuple[str, ...] = ("train", "val", "test")
DEFAULT_FRACTIONS: dict[str, float] = {"train": 0.7, "val": 0.15, "test": 0.15}


def patient_split(patient_ids: Sequence[str] | np.ndarray,
                  fractions: Mapping[str, float] | Sequence[float] = DEFAULT_FRACTIONS,
                  seed: int = 0) -> dict[str, np.ndarray]:
    """Split items by patient: {split name: sorted item indices}.

    `fractions` is a mapping name -> fraction of PATIENTS (or a sequence for train/val/test),
    summing to 1. Patients are shuffled with `seed`; counts use largest remainders, and every
    split with a positive fraction gets at least one patient when there are enough patients.
    """
    if not isinstance(fractions, Mapping):
        fractions = dict(zip(SPLITS, fractions, strict=False))
    names = list(fractions)
    frac = np.array([float(fractions[k]) for k in names])
    if (frac < 0).any() or not np.isclose(frac.sum(), 1.0, atol=1e-6):
        raise UserError(f"split fractions {dict(fractions)} must be >= 0 and sum to 1")
    ids = np.asarray(patient_ids).astype(str)
    unique = np.unique(ids)
    order = np.random.default_rng(seed).permutation(len(unique))
    counts = _counts(len(unique), frac)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    split_of = np.empty(len(unique), np.int64)
    for j in range(len(names)):
        split_of[order[bounds[j]:bounds[j + 1]]] = j
    item_split = split_of[np.searchsorted(unique, ids)] if len(ids) else np.zeros(0, np.int64)
    return {name: np.nonzero(item_split == j)[0] for j, name in enumerate(names)}


def _counts(n: int, frac: np.ndarray) -> np.ndarray:
    """Patients per split: floor(n * f) plus largest remainders; >= 1 where f > 0 if possible."""
    raw = n * frac
    counts = np.floor(raw).astype(np.int64)
    for j in np.argsort(-(raw - counts), kind="stable")[: n - counts.sum()]:
        counts[j] += 1
    positive = frac > 0
    if n >= positive.sum():
        for j in np.nonzero(positive & (counts == 0))[0]:
            counts[j] += 1
            counts[np.argmax(counts)] -= 1
    return counts
