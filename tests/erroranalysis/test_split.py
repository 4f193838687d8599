"""Eyeball/blackbox split: groups stay whole, the eyeball set is sized, sample never leaks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genmed.errors import UserError
from genmed.erroranalysis import load_predictions, make_split, overfit_test, sample_errors

from .conftest import grouped_dev


def test_split_keeps_groups_and_sizes_eyeball(tmp_path):
    preds = load_predictions(grouped_dev(tmp_path, n_patients=200, per_patient=5))
    split = make_split(preds, eyeball_errors=40, group_col="patient_id", seed=1)
    per_patient = pd.DataFrame({"p": preds["patient_id"], "s": split.sets}).groupby("p")["s"].nunique()
    assert (per_patient == 1).all()
    n_eye = int((split.sets == "eyeball").sum())
    rate = preds["error"].mean()
    # Size aimed at 40 / rate examples, to within one patient (5 slices).
    assert abs(n_eye - 40 / rate) <= 5
    assert split.expected_errors == pytest.approx(n_eye * rate)
    assert split.eyeball_errors == int(preds["error"][split.sets == "eyeball"].sum())
    other = make_split(preds, eyeball_errors=40, group_col="patient_id", seed=2)
    assert not other.sets.equals(split.sets)  # the seed matters
    assert make_split(preds, 40, group_col="patient_id", seed=1).sets.equals(split.sets)


def test_split_refuses_too_many_errors_and_bad_group(tmp_path):
    preds = load_predictions(grouped_dev(tmp_path, n_patients=10, per_patient=2))
    with pytest.raises(UserError, match="no blackbox set"):
        make_split(preds, eyeball_errors=1000)
    with pytest.raises(UserError, match="group column 'site'"):
        make_split(preds, 2, group_col="site")


@pytest.mark.parametrize("huge", [10**20, 2**63 - 1])
def test_split_refuses_a_huge_request_instead_of_a_one_example_eyeball_set(tmp_path, huge):
    # n * huge / n_errors rounds in float: every cumulative size was equally far from it and
    # the first group alone became the "eyeball set"
    preds = load_predictions(grouped_dev(tmp_path, n_patients=10, per_patient=2))
    with pytest.raises(UserError, match="no blackbox set"):
        make_split(preds, eyeball_errors=huge)


def test_sample_never_returns_blackbox(tmp_path):
    preds = load_predictions(grouped_dev(tmp_path, n_patients=40, per_patient=5))
    split = make_split(preds, eyeball_errors=15, group_col="patient_id")
    got = sample_errors(preds, split.sets, n=1000)
    eye_err = preds[(split.sets == "eyeball") & preds["error"]].index
    assert set(got["id"]) == set(eye_err)
    assert (split.sets[got["id"]] == "eyeball").all()
    assert (got["y_true"] != got["y_pred"]).all()
    few = sample_errors(preds, split.sets, n=3, seed=5)
    assert len(few) == 3 and set(few["id"]) <= set(eye_err)


def _preds(eye_err: int, eye_n: int, bb_err: int, bb_n: int) -> tuple[pd.DataFrame, pd.Series]:
    n = eye_n + bb_n
    ids = [f"i{k}" for k in range(n)]
    err = np.zeros(n, bool)
    err[:eye_err] = True
    err[eye_n:eye_n + bb_err] = True
    df = pd.DataFrame({"id": ids, "y_true": "a", "y_pred": np.where(err, "b", "a")}).set_index("id", drop=False)
    df["error"] = err
    sets = pd.Series(["eyeball"] * eye_n + ["blackbox"] * bb_n, index=ids)
    return df, sets


def test_overfit_flags_real_gap_not_chance():
    real = overfit_test(*_preds(eye_err=10, eye_n=200, bb_err=150, bb_n=1000))  # 5% vs 15%
    assert real["overfit"] and real["p_value"] < 1e-3
    assert real["gap"] == pytest.approx(0.10)
    assert "overfit" in real["message"]
    chance = overfit_test(*_preds(eye_err=27, eye_n=200, bb_err=150, bb_n=1000))  # 13.5% vs 15%
    assert not chance["overfit"] and chance["p_value"] > 0.2
    worse = overfit_test(*_preds(eye_err=40, eye_n=200, bb_err=150, bb_n=1000))  # eyeball worse
    assert not worse["overfit"]
