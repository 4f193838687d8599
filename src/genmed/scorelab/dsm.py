"""Denoising vs explicit score matching on a mixture whose score is known (Vincent 2011).

With lambda(t) = kernel variance (Song et al. 2021, eq. 7 weighting) and x_t = alpha x_0 + sqrt(v) z:

    J_naive(theta) = 1/2 E lambda |s_theta(x_t, t) - grad log p_t(x_t)|^2           (explicit)
    J_mod(theta)   = 1/2 E lambda |s_theta(x_t, t) - grad log p(x_t | x_0)|^2       (denoising)
    J_mod - J_naive = 1/2 E lambda (|b|^2 - |a|^2) + E lambda s_theta . (a - b),

a = grad log p_t(x_t), b = -(x_t - alpha x_0) / v. Since E[b | x_t] = a, the last term has mean 0
for every theta, so the difference is a constant C (Vincent 2011, Appendix). C > 0 and a != b
pointwise: the source's slip (setting a = b) would make J_naive = J_mod, which the numbers refute.

`run_dsm_vs_esm` evaluates both objectives on ONE fixed Monte-Carlo sample for many theta (random
networks and checkpoints along training), reports the spread of J_mod - J_naive across theta
against its standard error, then trains with each objective and reports the relative L2 error
to the analytic score.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from genmed.errors import UserError, check_positive
from genmed.scorelab.mixture import GaussianMixture
from genmed.scorelab.processes import NoiseProcess


@dataclass(frozen=True)
class DSMConfig:
    """Settings of the DSM-vs-ESM experiment (1-D mixture, VE noise as in the source)."""

    weights: tuple[float, ...] = (0.3, 0.7)  # mixture weights (sum to 1)
    means: tuple[float, ...] = (-2.0, 2.0)  # component means (data units)
    stds: tuple[float, ...] = (0.5, 0.5)  # component stds (data units)
    process: Literal["ve", "vp"] = "ve"  # noising process
    sigma: float = 1.0  # VE scale: kernel std at t = 1
    t_min: float = 0.05  # training / evaluation times t ~ U(t_min, 1)
    n_eval: int = 20000  # Monte-Carlo sample shared by every theta
    n_random: int = 20  # randomly initialised networks
    train_steps: int = 1500  # Adam steps per objective
    checkpoint_every: int = 150  # theta taken along training every this many steps
    batch: int = 512  # training batch size
    lr: float = 3e-3  # Adam learning rate
    hidden: int = 64  # MLP width
    seed: int = 0  # seeds data, networks and training

    def __post_init__(self) -> None:
        GaussianMixture(self.weights, self.means, self.stds)  # validates the mixture
        NoiseProcess(self.process, sigma=self.sigma)
        if not 0 < self.t_min < 1:
            raise UserError(f"t_min={self.t_min!r} must be in (0, 1)")
        for name in ("n_eval", "n_random", "train_steps", "checkpoint_every", "batch", "hidden", "lr"):
            check_positive(name, getattr(self, name))


class ScoreNet(nn.Module):
    """Tiny MLP s_theta(x, t) for 1-D data: input (x, log v(t)), output / sqrt(v(t)) (EDM-style
    output scaling, Karras et al. 2022, so every t has unit-scale targets)."""

    def __init__(self, hidden: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, 1))

    def forward(self, x: Tensor, v: Tensor) -> Tensor:  # x, v: (N,) -> (N,)
        h = torch.stack([x, torch.log(v)], dim=-1)
        return self.net(h).squeeze(-1) / torch.sqrt(v)


def draw(gm: GaussianMixture, proc: NoiseProcess, n: int, t_min: float, g: torch.Generator) -> dict[str, Tensor]:
    """One Monte-Carlo sample (x0, t, x_t) with v, lambda, a = exact score, b = conditional score."""
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=g))
    x0 = torch.as_tensor(gm.sample(n, seed=seed), dtype=torch.float32)
    t = t_min + (1 - t_min) * torch.rand(n, generator=g)
    z = torch.randn(n, generator=g)
    al, v = proc.alpha(t), proc.variance(t)
    xt = al * x0 + v.sqrt() * z
    a = gm.score(xt.double(), t.double(), proc.kind, sigma=proc.sigma, beta_min=proc.beta_min,
                 beta_max=proc.beta_max).float()
    b = -(xt - al * x0) / v
    return {"x0": x0, "t": t, "xt": xt, "v": v, "lam": v, "a": a, "b": b}


def objectives(net: nn.Module, s: dict[str, Tensor]) -> dict[str, Tensor]:
    """Per-sample explicit and denoising losses (N,) on sample s (unreduced, like every loss here)."""
    out = net(s["xt"], s["v"])
    return {"naive": 0.5 * s["lam"] * (out - s["a"]) ** 2, "mod": 0.5 * s["lam"] * (out - s["b"]) ** 2}


def _evaluate(net: nn.Module, s: dict[str, Tensor], label: str) -> dict[str, Any]:
    with torch.no_grad():
        o = objectives(net, s)
        d = (o["mod"] - o["naive"]).double()
        err = (net(s["xt"], s["v"]) - s["a"]).double()
    n = d.numel()
    return {"theta": label, "j_naive": float(o["naive"].double().mean()), "j_mod": float(o["mod"].double().mean()),
            "diff": float(d.mean()), "diff_se": float(d.std() / math.sqrt(n)),
            "rel_l2": float(torch.sqrt((s["lam"] * err**2).sum() / (s["lam"] * s["a"].double() ** 2).sum()))}


def run_dsm_vs_esm(cfg: DSMConfig = DSMConfig()) -> dict[str, Any]:
    """Run the experiment; returns a JSON-ready dict (rows per theta, summary, training results)."""
    torch.manual_seed(cfg.seed)
    gm = GaussianMixture(cfg.weights, cfg.means, cfg.stds)
    proc = NoiseProcess(cfg.process, sigma=cfg.sigma)
    g = torch.Generator().manual_seed(cfg.seed)
    ev = draw(gm, proc, cfg.n_eval, cfg.t_min, g)
    rows = []
    for i in range(cfg.n_random):
        torch.manual_seed(cfg.seed * 1000 + i + 1)
        rows.append(_evaluate(ScoreNet(cfg.hidden), ev, f"random_{i}"))
    trained: dict[str, Any] = {}
    # A teaching toy with its own two-objective loop (the same batches, one network per
    # objective), deliberately outside the training engine: the point is the objectives' values.
    for objective in ("naive", "mod"):
        torch.manual_seed(cfg.seed * 1000 + 999)
        net = ScoreNet(cfg.hidden)
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.train_steps)
        tg = torch.Generator().manual_seed(cfg.seed + 17)  # same batches for both objectives
        for step in range(1, cfg.train_steps + 1):
            loss = objectives(net, draw(gm, proc, cfg.batch, cfg.t_min, tg))[objective].mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if step % cfg.checkpoint_every == 0 or step == cfg.train_steps:
                rows.append(_evaluate(net, ev, f"train_{objective}_{step}"))
        test = draw(gm, proc, cfg.n_eval, cfg.t_min, torch.Generator().manual_seed(cfg.seed + 99))
        trained[objective] = {"rel_l2_test": _evaluate(net, test, objective)["rel_l2"], "net": net}
    diffs = np.array([r["diff"] for r in rows])
    ses = np.array([r["diff_se"] for r in rows])
    jn = np.array([r["j_naive"] for r in rows])
    with torch.no_grad():
        const = 0.5 * ev["lam"].double() * (ev["b"].double() ** 2 - ev["a"].double() ** 2)
        pointwise = (ev["lam"].double() * (ev["a"].double() - ev["b"].double()) ** 2).mean()
    summary = {
        "n_theta": len(rows),
        "diff_mean": float(diffs.mean()),
        "diff_spread_sd": float(diffs.std(ddof=1)),
        "diff_se_median": float(np.median(ses)),
        "spread_over_se": float(diffs.std(ddof=1) / np.median(ses)),
        "j_naive_spread_sd": float(jn.std(ddof=1)),
        "constant_c": float(const.mean()),
        "constant_c_se": float(const.std() / math.sqrt(const.numel())),
        "pointwise_gap_mean": float(pointwise),
        "rel_l2_trained_naive": trained["naive"]["rel_l2_test"],
        "rel_l2_trained_mod": trained["mod"]["rel_l2_test"],
    }
    return {"config": asdict(cfg), "rows": rows, "summary": summary,
            "nets": {k: v["net"] for k, v in trained.items()}, "mixture": gm, "process": proc}
