"""Samplers on an analytic case: Gaussian data N(mu, s^2 I), whose optimal eps-predictor is
known in closed form, E[eps | x_t] = sqrt(1 - ab) (x_t - sqrt(ab) mu) / (ab s^2 + 1 - ab)."""

from __future__ import annotations

import pytest
import torch

from genmed.errors import UserError
from genmed.models.denoiser import EpsDenoiser, eps_to_score, eps_to_x0, x0_to_eps
from genmed.models.samplers import SAMPLERS, get_sampler
from genmed.models.schedules import alpha_bar, make_schedule, timestep_grid

MU, STD = 0.4, 0.3


class GaussianEps:
    """Optimal eps-predictor for x_0 ~ N(mu_c, STD^2) per dimension; mu_c set by class."""

    def __init__(self, ab: torch.Tensor, means: dict[int | None, float]) -> None:
        self.ab, self.means = ab.float(), means

    def mean_for(self, labels: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
        if labels is None:
            return torch.full((x.shape[0],), self.means[None])
        return torch.tensor([self.means.get(int(c), self.means[None]) for c in labels])

    def net(self, x: torch.Tensor, timesteps: torch.Tensor, class_labels=None) -> torch.Tensor:
        ab = self.ab[timesteps].view(-1, *([1] * (x.ndim - 1)))
        mu = self.mean_for(class_labels, x).view(-1, *([1] * (x.ndim - 1)))
        return (1 - ab).sqrt() * (x - ab.sqrt() * mu) / (ab * STD**2 + 1 - ab)

    def __call__(self, x, t, *, cond=None, guidance=1.0):
        return self.net(x, t, cond)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize("sampler,steps,spacing,tol", [
    ("ddpm", None, "uniform", 0.01),  # full Algorithm 2 chain
    ("ddim", 1000, "uniform", 0.01),
    ("ddim", 50, "quadratic", 0.02),
    ("dpmpp_2m", 20, "logsnr", 0.015),
    ("dpmpp_2m", 10, "logsnr", 0.015),
    ("dpmpp_2m_sde", 20, "logsnr", 0.02),  # std bias ~0.012 +- 0.002 over noise seeds
])
def test_samplers_recover_gaussian_data(kind: str, sampler: str, steps: int | None, spacing: str,
                                        tol: float) -> None:
    ab = alpha_bar(kind, 1000)
    den = GaussianEps(ab, {None: MU})
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4000, 1, 2, 2, generator=g)
    out = get_sampler(sampler)(den, x, make_schedule(kind, 1000, steps, spacing=spacing), generator=g)
    assert abs(out.mean().item() - MU) < 0.01
    assert abs(out.std().item() - STD) < tol


def test_second_order_solver_beats_ddim_at_few_steps() -> None:
    ab = alpha_bar("linear", 1000)
    den = GaussianEps(ab, {None: MU})
    x = torch.randn(4000, 4, generator=torch.Generator().manual_seed(0))
    sched = make_schedule("linear", 1000, 10)
    err = {s: abs(get_sampler(s)(den, x, sched).std().item() - STD) for s in ("ddim", "dpmpp_2m")}
    assert err["dpmpp_2m"] < 0.5 * err["ddim"]


def test_sde_solver_corrects_a_biased_denoiser_better_than_the_ode() -> None:
    """A denoiser whose eps is 15% too small at high noise: the ODE carries that error to the
    end (std 0.29 too wide), while the SDE sampler's fresh noise lets later, accurate steps
    correct it (0.016), as ancestral DDPM does (Karras et al. 2022, Sec. 4)."""
    ab = alpha_bar("linear", 1000)
    exact = GaussianEps(ab, {None: MU})

    def biased(x, t, *, cond=None, guidance=1.0):
        a = ab[t].view(-1, *([1] * (x.ndim - 1))).float()
        return exact(x, t) * (1 - 0.15 * (1 - a))  # error grows with the noise level

    x = torch.randn(4000, 4, generator=torch.Generator().manual_seed(0))
    sched = make_schedule("linear", 1000, 20)
    err = {s: abs(get_sampler(s)(biased, x, sched, generator=torch.Generator().manual_seed(1)).std().item() - STD)
           for s in ("dpmpp_2m", "dpmpp_2m_sde")}
    assert err["dpmpp_2m_sde"] < 0.25 * err["dpmpp_2m"]


def test_ddim_deterministic_and_ddpm_uses_generator() -> None:
    ab = alpha_bar("linear", 1000)
    den = GaussianEps(ab, {None: MU})
    x = torch.randn(8, 3)
    sched = make_schedule("linear", 1000, 20)
    a = get_sampler("ddim")(den, x, sched)
    b = get_sampler("ddim")(den, x, sched)
    assert torch.equal(a, b)
    runs = [get_sampler("ddpm")(den, x, sched, generator=torch.Generator().manual_seed(s))
            for s in (1, 1, 2)]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


def test_guidance_moves_samples_toward_the_class() -> None:
    ab = alpha_bar("linear", 1000)
    gauss = GaussianEps(ab, {None: 0.0, 0: -0.5, 1: 0.5})  # index 2 = null class
    den = EpsDenoiser(lambda x, timesteps, class_labels: gauss.net(
        x, timesteps, None if class_labels is None else torch.where(class_labels == 2, -1, class_labels)),
        ab, null_class=2)
    gauss.means[-1] = 0.0
    cond = torch.ones(2000, dtype=torch.long)
    means = []
    for w in (0.0, 1.0, 3.0):
        g = torch.Generator().manual_seed(0)
        x = torch.randn(2000, 4, generator=g)
        out = get_sampler("ddim")(den, x, make_schedule("linear", 1000, 25), cond=cond, guidance=w)
        means.append(out.mean().item())
    assert abs(means[0]) < 0.03 and abs(means[1] - 0.5) < 0.03
    assert means[2] > means[1] + 0.2  # guidance > 1 pushes beyond the class mean


def test_conversions_are_inverse_and_score_matches_gaussian() -> None:
    x, eps = torch.randn(5, 3), torch.randn(5, 3)
    ab = torch.rand(5) * 0.9 + 0.05
    x0 = eps_to_x0(x, eps, ab)
    assert torch.allclose(x0_to_eps(x, x0, ab), eps, atol=1e-5)
    # p_t(x) for x_0 ~ N(mu, s^2): N(sqrt(ab) mu, ab s^2 + 1 - ab); score = -(x - m) / v
    abar = alpha_bar("linear")
    t = torch.full((5,), 300)
    den = GaussianEps(abar, {None: MU})
    a = abar[300].float()
    expected = -(x - a.sqrt() * MU) / (a * STD**2 + 1 - a)
    assert torch.allclose(eps_to_score(x, den(x, t), a), expected, atol=1e-5)


def test_schedules_and_grid() -> None:
    for kind in ("linear", "cosine"):
        ab = alpha_bar(kind, 1000)
        assert ab.shape == (1000,) and bool((ab[1:] < ab[:-1]).all())
        assert ab[0] > 0.99 and ab[-1] < 0.01
    for spacing in ("uniform", "quadratic", "logsnr"):
        grid = timestep_grid(alpha_bar("linear"), 10, spacing)
        assert grid[0] == 999 and grid[-1] == 0 and len(grid) == 10
        assert bool((grid[1:] < grid[:-1]).all())
    assert make_schedule("linear", 1000, 5, t_start=200).timesteps[0] == 200


@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize("spacing", ["logsnr", "quadratic"])
def test_grid_keeps_every_requested_step(kind: str, spacing: str) -> None:
    """Rounding merges log-SNR/quadratic times near t = 0 (1000 -> 734 on the linear log-SNR
    grid before); merged times are filled so `steps` distinct times come back."""
    ab = alpha_bar(kind, 1000)
    full = timestep_grid(ab, 1000, spacing)
    assert full.tolist() == list(range(999, -1, -1))  # steps = T: every time, Algorithm 2
    for steps, t_start in ((50, None), (100, None), (20, 50), (50, 250)):
        grid = timestep_grid(ab, steps, spacing, t_start)
        assert len(grid) == steps and bool((grid[1:] < grid[:-1]).all())
        assert grid[0] == (999 if t_start is None else t_start) and grid[-1] == 0


def test_ddpm_with_T_steps_visits_every_time_on_the_logsnr_grid() -> None:
    from genmed.models import build_model

    model = build_model("diffusion", data_kind="vector", size=2, hidden=8, depth=1,
                        num_train_timesteps=1000, spacing="logsnr")
    seen: list[int] = []
    model.net.register_forward_pre_hook(lambda m, args, kw: seen.append(int(kw["timesteps"][0])),
                                        with_kwargs=True)
    model.sample(2, steps=1000, sampler="ddpm", generator=torch.Generator().manual_seed(0))
    assert seen == list(range(999, -1, -1))


@pytest.mark.parametrize("bad", [lambda: get_sampler("euler"), lambda: alpha_bar("sigmoid"),
                                 lambda: timestep_grid(alpha_bar("linear"), 0),
                                 lambda: timestep_grid(alpha_bar("linear"), 5, "log"), lambda: make_schedule("linear", 100, 5, 100)])
def test_bad_sampler_options_are_user_errors(bad) -> None:
    with pytest.raises(UserError):
        bad()


def test_sampler_names() -> None:
    assert set(SAMPLERS) == {"ddpm", "ddim", "dpmpp_2m", "dpmpp_2m_sde"}
