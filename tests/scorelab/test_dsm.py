"""DSM vs ESM: J_mod - J_naive is constant in theta (within MC error), not zero, same minimiser."""

from __future__ import annotations

import pytest

from genmed.errors import UserError
from genmed.scorelab.dsm import DSMConfig, run_dsm_vs_esm


def test_difference_constant_in_theta_but_not_zero():
    cfg = DSMConfig(n_eval=4000, n_random=6, train_steps=250, checkpoint_every=125)
    s = run_dsm_vs_esm(cfg)["summary"]
    assert s["n_theta"] == 6 + 2 * 2
    # Constant in theta: the spread across theta is below one Monte-Carlo standard error ...
    assert s["spread_over_se"] < 1.0
    # ... while the objectives themselves vary a lot with theta.
    assert s["j_naive_spread_sd"] > 20 * s["diff_spread_sd"]
    # The difference is the theta-free constant C, and C is far from 0 (the source's slip).
    assert abs(s["diff_mean"] - s["constant_c"]) < 3 * s["diff_se_median"]
    assert s["constant_c"] > 10 * s["constant_c_se"]
    # E lambda |a - b|^2 = 2C in expectation (E[b | x_t] = a), not on one sample.
    assert s["pointwise_gap_mean"] == pytest.approx(2 * s["constant_c"], rel=0.05)
    # Both objectives lead towards the analytic score (short training: loose bound).
    assert s["rel_l2_trained_naive"] < 0.3 and s["rel_l2_trained_mod"] < 0.3


def test_bad_config():
    with pytest.raises(UserError, match="t_min"):
        DSMConfig(t_min=1.5)
    with pytest.raises(UserError, match="sum to 1"):
        DSMConfig(weights=(0.5, 0.6))
    with pytest.raises(UserError, match="process='ou'"):
        DSMConfig(process="ou")  # type: ignore[arg-type]
