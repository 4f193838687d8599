"""Samplers with the exact mixture score reproduce the mixture (1-D W1, mode weights, d = 2 test)."""

from __future__ import annotations

import pytest
import torch

from genmed.errors import UserError
from genmed.scorelab import GaussianMixture, NoiseProcess, langevin, probability_flow, reverse_sde
from genmed.scorelab.evaluate import sampler_accuracy

# Stated tolerances: W1 to 20 000 exact samples (two exact samples of 4000 differ by ~0.03-0.06),
# mode weights within 2 points of the true weights.
W1_TOL = 0.1
WEIGHT_TOL_POINTS = 2.0
SETTINGS = dict(n_steps=300, levels=20, steps_each=50, step_ratio=0.5)
PROCESSES = [NoiseProcess("ve", sigma=50.0), NoiseProcess("vp")]


@pytest.mark.parametrize("process", PROCESSES, ids=["ve", "vp"])
def test_samplers_reproduce_1d_mixture(process):
    gm = GaussianMixture([0.3, 0.7], [-2.0, 2.0], [0.5, 0.5])
    rows = {r["sampler"]: r for r in sampler_accuracy(gm, process, n=4000, seed=0, **SETTINGS)}
    for name in ("reverse_sde", "probability_flow", "annealed_langevin"):
        assert rows[name]["w1"] < W1_TOL, rows[name]
        assert rows[name]["max_weight_error_points"] < WEIGHT_TOL_POINTS, rows[name]
    # Single-level Langevin at the smallest noise, same steps: the mode weights are wrong
    # (Song & Ermon 2019, Sec. 3.2.2): annealing is what fixes them.
    assert rows["langevin"]["max_weight_error_points"] > 10


@pytest.mark.parametrize("process", PROCESSES, ids=["ve", "vp"])
def test_samplers_reproduce_2d_mixture(process):
    gm = GaussianMixture([0.2, 0.3, 0.5], [[-2.0, 0.0], [2.0, 0.0], [0.0, 2.5]],
                         [[0.5, 0.5], [0.4, 0.7], [0.6, 0.6]])
    rows = {r["sampler"]: r for r in sampler_accuracy(gm, process, n=2000, seed=0, **SETTINGS)}
    for name in ("reverse_sde", "probability_flow", "annealed_langevin"):
        assert rows[name]["energy_p"] > 0.01, rows[name]
        # n = 2000: one standard error of a weight is ~1 point, so allow 3 here.
        assert rows[name]["max_weight_error_points"] < 3.0, rows[name]
    assert rows["langevin"]["energy_p"] < 0.01


def test_samplers_are_pure_and_seeded():
    gm = GaussianMixture([0.5, 0.5], [-1.0, 1.0], [0.3, 0.3])
    p = NoiseProcess("vp")
    score = lambda x, t: gm.score(x, t, "vp")  # noqa: E731
    x0 = torch.randn(64, dtype=torch.float64)
    ts = p.time_grid(20)
    a = reverse_sde(score, x0, ts, process=p, generator=torch.Generator().manual_seed(5))
    b = reverse_sde(score, x0, ts, process=p, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and not torch.equal(a, x0)
    c = probability_flow(score, x0, ts, process=p)
    assert torch.equal(c, probability_flow(score, x0, ts, process=p))
    seen = []
    langevin(score, x0, 0.1, n_steps=3, step_size=1e-3, callback=lambda i, t, x: seen.append(i))
    assert seen == [0, 1, 2]


def test_sampler_bad_input():
    p = NoiseProcess("ve")
    score = lambda x, t: -x  # noqa: E731
    with pytest.raises(UserError, match="strictly decreasing"):
        reverse_sde(score, torch.zeros(3), [0.1, 0.5], process=p)
    with pytest.raises(UserError, match="step_size"):
        langevin(score, torch.zeros(3), 0.1, n_steps=3, step_size=-1.0)
    with pytest.raises(UserError, match="process='xx'"):
        NoiseProcess("xx")  # type: ignore[arg-type]
    with pytest.raises(UserError, match="n_steps"):
        p.time_grid(0)
