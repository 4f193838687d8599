"""Score-based samplers as pure functions of a score function s(x, t) ~ grad_x log p_t(x).

One signature, k-diffusion style: `sampler(score, x, ts, *, process, generator, callback)`
where `score(x, t) -> tensor like x` (t a Python float), `x` is the start (a tensor, never
modified in place), `ts` the decreasing times visited, `process` a `NoiseProcess`, and
`generator` a `torch.Generator` for every random draw. Plain Langevin runs at one time `t`.

- `langevin`: unadjusted Langevin dynamics x <- x + eps/2 s + sqrt(eps) z (Welling & Teh 2011;
  Song & Ermon 2019, eq. 4), all at one noise level.
- `annealed_langevin`: Algorithm 1 of Song & Ermon (2019): T steps per level, step size
  alpha_i = eps * v_i / v_L with v_i the kernel variance at level i.
- `reverse_sde`: Euler-Maruyama on the reverse-time SDE dx = [f x - g^2 s] dt + g dw_bar
  (Song et al. 2021, eq. 6); the last step adds no noise (Tweedie-like denoising step).
- `probability_flow`: Heun's method on the probability-flow ODE dx/dt = f x - g^2 s / 2
  (Song et al. 2021, eq. 13; Heun as in Karras et al. 2022, Algorithm 1).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from genmed.errors import UserError
from genmed.scorelab.processes import NoiseProcess

ScoreFn = Callable[[Tensor, float], Tensor]
Callback = Callable[[int, float, Tensor], None]


def _times(ts: Sequence[float] | Tensor) -> list[float]:
    out = [float(t) for t in (ts.tolist() if isinstance(ts, Tensor) else ts)]
    if len(out) < 2 or any(b >= a for a, b in zip(out, out[1:])):
        raise UserError(f"ts must be at least 2 strictly decreasing times, got {out[:4]}...")
    if out[-1] < 0:
        raise UserError(f"ts must be >= 0, got {out[-1]}")
    return out


def _noise(x: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)


def prior_sample(
    process: NoiseProcess, shape: Sequence[int], *, generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """Draw x_T from the Gaussian prior at t = 1: N(0, sigma^2 I) for VE, N(0, I) for VP."""
    return process.prior_std() * torch.randn(tuple(shape), generator=generator, dtype=dtype)


def langevin(
    score: ScoreFn,
    x: Tensor,
    t: float,
    *,
    n_steps: int,
    step_size: float,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> Tensor:
    """Unadjusted Langevin at the single time t: x <- x + eps/2 s(x, t) + sqrt(eps) z (eps = step_size)."""
    if n_steps < 1 or not step_size > 0:
        raise UserError(f"n_steps={n_steps!r} must be >= 1 and step_size={step_size!r} > 0")
    for i in range(n_steps):
        x = x + 0.5 * step_size * score(x, t) + math.sqrt(step_size) * _noise(x, generator)
        if callback is not None:
            callback(i, t, x)
    return x


def annealed_langevin(
    score: ScoreFn,
    x: Tensor,
    ts: Sequence[float] | Tensor,
    *,
    process: NoiseProcess,
    n_steps_each: int = 100,
    eps: float = 2e-5,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> Tensor:
    """Annealed Langevin dynamics, Algorithm 1 of Song & Ermon (2019), levels at times `ts` (> 0).

    Step size at level i: alpha_i = eps * v(t_i) / v(t_L), v the kernel variance (data units^2).
    """
    times = _times(ts)
    if times[-1] <= 0:
        raise UserError("annealed_langevin needs every time > 0 (a noise level of 0 has no step size)")
    v_last = float(process.variance(times[-1]))
    for t in times:
        step = eps * float(process.variance(t)) / v_last
        x = langevin(score, x, t, n_steps=n_steps_each, step_size=step, generator=generator, callback=callback)
    return x


def reverse_sde(
    score: ScoreFn,
    x: Tensor,
    ts: Sequence[float] | Tensor,
    *,
    process: NoiseProcess,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> Tensor:
    """Euler-Maruyama on the reverse SDE dx = [f(t) x - g(t)^2 s(x, t)] dt + g(t) dw_bar (eq. 6)."""
    times = _times(ts)
    for i, (t, t_next) in enumerate(zip(times, times[1:])):
        dt = t - t_next  # > 0: we integrate backwards in time
        drift = float(process.drift_coef(t)) * x - float(process.g2(t)) * score(x, t)
        x = x - drift * dt
        if i < len(times) - 2:
            x = x + math.sqrt(float(process.g2(t)) * dt) * _noise(x, generator)
        if callback is not None:
            callback(i, t_next, x)
    return x


def probability_flow(
    score: ScoreFn,
    x: Tensor,
    ts: Sequence[float] | Tensor,
    *,
    process: NoiseProcess,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> Tensor:
    """Heun's method on the probability-flow ODE dx/dt = f(t) x - g(t)^2 s(x, t) / 2 (eq. 13).

    Deterministic: `generator` is accepted for the shared signature and unused.
    """
    times = _times(ts)

    def velocity(y: Tensor, t: float) -> Tensor:
        return float(process.drift_coef(t)) * y - 0.5 * float(process.g2(t)) * score(y, t)

    for i, (t, t_next) in enumerate(zip(times, times[1:])):
        h = t_next - t  # < 0
        d = velocity(x, t)
        x_euler = x + h * d
        if t_next > 0:
            x = x + 0.5 * h * (d + velocity(x_euler, t_next))
        else:
            x = x_euler  # Karras et al. 2022, Alg. 1: Euler on the step to t = 0
        if callback is not None:
            callback(i, t_next, x)
    return x


SAMPLERS: dict[str, Callable[..., Tensor]] = {
    "annealed_langevin": annealed_langevin,
    "reverse_sde": reverse_sde,
    "probability_flow": probability_flow,
}
