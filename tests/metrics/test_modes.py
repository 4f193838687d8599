"""Mode-collapse metrics on exact and collapsed samples of the published mixtures."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genmed.data.toy import get_mixture, sample_mixture
from genmed.errors import UserError
from genmed.metrics.modes import mode_metrics, summarise_seeds


@pytest.mark.parametrize("name,k", [("ring", 8), ("grid", 25)])
def test_exact_samples_capture_everything(name, k):
    spec = get_mixture(name)
    x, _ = sample_mixture(spec, 20000, torch.Generator().manual_seed(0))
    m = mode_metrics(x, spec)
    assert m.modes_captured == k and m.modes_captured_strict == k
    # P(|z| <= 3) for a 2-D standard normal is 1 - exp(-4.5) = 0.9889.
    assert abs(m.high_quality - (1 - math.exp(-4.5))) < 0.005
    assert m.reverse_kl < 0.01


def test_collapsed_samples_give_smaller_numbers():
    spec = get_mixture("ring")
    gen = torch.Generator().manual_seed(1)
    x, modes = sample_mixture(spec, 8000, gen)
    keep = x[modes < 3]  # only 3 of 8 modes, equally weighted
    m = mode_metrics(keep, spec)
    assert m.modes_captured == 3
    assert math.isclose(m.reverse_kl, math.log(8 / 3), rel_tol=0.02)
    # Off-mode junk lowers HQ but not the mode count.
    junk = torch.zeros(len(keep), 2)  # the ring's centre is 1.0 from every mode
    m2 = mode_metrics(torch.cat([keep, junk]), spec)
    assert abs(m2.high_quality - 0.5 * m.high_quality) < 0.01 and m2.modes_captured == 3


def test_strict_variant_ignores_stragglers():
    spec = get_mixture("grid")
    x, modes = sample_mixture(spec, 25000, torch.Generator().manual_seed(2))
    main = x[modes < 20]
    stragglers = torch.cat([x[modes == k][:2] for k in range(20, 25)])  # 2 << 1% of 1000
    m = mode_metrics(torch.cat([main, stragglers]), spec)
    assert m.modes_captured == 25 and m.modes_captured_strict == 20


def test_no_high_quality_sample():
    m = mode_metrics(np.full((10, 2), 100.0), get_mixture("ring"))
    assert m.high_quality == 0 and m.modes_captured == 0 and math.isnan(m.reverse_kl)
    assert m.to_dict()["reverse_kl"] is None


def test_summary_over_seeds():
    spec = get_mixture("ring")
    runs = [mode_metrics(sample_mixture(spec, 2000, torch.Generator().manual_seed(s))[0], spec) for s in range(5)]
    summ = summarise_seeds(runs)
    assert summ["modes_captured"]["mean"] == 8 and summ["modes_captured"]["sem"] == 0
    hq = [r.high_quality for r in runs]
    assert math.isclose(summ["high_quality"]["sem"], np.std(hq, ddof=1) / math.sqrt(5))


def test_bad_input():
    spec = get_mixture("ring")
    with pytest.raises(UserError, match=r"expected shape \(n, 2\)"):
        mode_metrics(np.zeros((5, 3)), spec)
    with pytest.raises(UserError, match="NaN"):
        mode_metrics(np.full((5, 2), np.nan), spec)
    with pytest.raises(UserError, match="empty"):
        mode_metrics(np.zeros((0, 2)), spec)
    with pytest.raises(UserError, match="at least one"):
        summarise_seeds([])
