"""Consistency distillation (Song, Dhariwal, Chen & Sutskever 2023, "Consistency Models",
Algorithm 2) of a trained diffusion or latent diffusion model into a 1-4 step sampler.

A consistency function maps any point x_t of a probability-flow ODE trajectory to its origin
x_0. Our teacher is the DDPM of `models/diffusion.py` (VP, x_t = sqrt(ab_t) x_0 +
sqrt(1 - ab_t) eps, discrete t = 0..T-1); in its variance-exploding form x_t / sqrt(ab_t) =
x_0 + sigma_t eps with sigma_t = sqrt((1 - ab_t) / ab_t). The student is a copy of the
teacher's network (same weights at the start) read through the skip/out parameterisation of
Song et al. 2023 (eq. 5 and Appendix C), with sigma_min = sigma_0 (t = 0, our t_min):

    f_theta(x_t, t) = c_skip(t) x_t / sqrt(ab_t) + c_out(t) F_theta(x_t, t),
    c_skip = sigma_data^2 / ((sigma_t - sigma_min)^2 + sigma_data^2),
    c_out  = sigma_data (sigma_t - sigma_min) / sqrt(sigma_data^2 + sigma_t^2),
    F_theta = x0_hat_theta(x_t, t) / sigma_data   (the network's denoised estimate, in units
                                                  of sigma_data),

so f(x, t_min) = x exactly. The network's output is read as v (`prediction="v"`, default;
Salimans & Ho 2022, sec. 4): x0_hat = sqrt(ab_t) x_t - sqrt(1 - ab_t) v, which bounds the x0
error by the output's error at every t. Read as eps (eq. 15 of Ho et al. 2020), the student
of an eps teacher starts exactly as the teacher's one-step x0 estimate, but
x0_hat = (x_t - sqrt(1 - ab_t) eps) / sqrt(ab_t) multiplies an output error by up to 157 at
t = T-1 (linear schedule), which drove image students to noise.

Training (Algorithm 2): N times 0 = t_1 < ... < t_N = T-1 (`num_scales`, on the sampling
grid `spacing`); per sample n ~ U{1..N-1}, x_{t_{n+1}} = q(x_0, t_{n+1}), one step of the
teacher's deterministic DDIM solver (Song, Meng & Ermon 2021, eq. 12; the exact first-order
probability-flow ODE step in these variables) to x_hat_{t_n}, and the per-sample distance
lambda(t_n) d(f_theta(x_{t_{n+1}}, t_{n+1}), f_theta-(x_hat_{t_n}, t_n)), lambda = 1 or
(`weighting="ict"`) the 1 / (sigma_{n+1} - sigma_n) of improved consistency training. The target
network theta- is an EMA of the student with decay mu (`target_decay`; Song et al. 2023,
Table 3: mu = 0 for CD on CIFAR-10, which makes theta- = stopgrad(theta), 0.95 for ImageNet),
held in the model and updated from the student's current weights at the start of each
training `loss` call: the same order as Algorithm 2, where theta- follows each optimiser step.
The engine's own weight EMA (the recipe's `ema_decay`) is separate: it is what is sampled.

Class labels reach teacher and student; the teacher may apply classifier-free guidance
(`guidance`, Ho & Salimans 2022), which the student then learns, so it samples guided images
without a second pass. Labels are dropped to the null class with the teacher's
`cond_drop_prob` (both networks then see the null class), so the student still samples
unconditionally. An image condition (batch["cond"], `cond_channels`) is passed to both.
Sampling is multistep consistency sampling (Algorithm 1), `samplers.sample_consistency`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, get_args

import torch
from torch import Tensor, nn

from genmed.config import from_dict, to_dict
from genmed.errors import UserError, check_choice, check_positive
from genmed.models.base import (Batch, GenerativeModel, ModelConfig, batch_labels, check_labels,
                                evaluating, randn)
from genmed.models.denoiser import Prediction, eps_to_x0, v_to_x0, x0_to_eps
from genmed.models.diffusion import DiffusionConfig, DiffusionModel
from genmed.models.latent import LatentDiffusionModel, LDMConfig
from genmed.models.samplers import sample_consistency
from genmed.models.schedules import SPACINGS, DiscreteSchedule, Spacing, broadcast, timestep_grid

SHARED = ("spatial_dims", "in_channels", "size", "num_classes", "data_kind")  # set on the student
TEACHERS: dict[str, tuple[type[ModelConfig], type[GenerativeModel]]] = {
    "diffusion": (DiffusionConfig, DiffusionModel), "ldm": (LDMConfig, LatentDiffusionModel)}
Distance = Literal["l2", "pseudo_huber"]
Weighting = Literal["uniform", "ict"]


@dataclass(frozen=True, kw_only=True)
class ConsistencyConfig(ModelConfig):
    """A frozen teacher (`teacher_family`, its config `teacher`) and a student of its shape."""

    teacher_family: Literal["diffusion", "ldm"] = "diffusion"  # the distilled run's family
    teacher: dict[str, Any] = field(default_factory=dict)  # the teacher's config (no SHARED keys)
    teacher_run: str = ""  # provenance: the run the teacher weights came from
    num_scales: int = 40  # N, ODE grid points (Song et al. 2023 CD: 18 CIFAR-10, 40 ImageNet)
    spacing: Spacing = "logsnr"  # where the N times lie (and the sampling times)
    target_decay: float = 0.0  # mu, EMA decay of the target network (0: stopgrad(student))
    distance: Distance = "l2"  # "l2": mean squared error; "pseudo_huber": Song & Dhariwal 2023
    # lambda(t_n) of each grid interval: "uniform" (Song et al. 2023, lambda = 1) or "ict"
    # (Song & Dhariwal 2023, sec. 3.4: 1 / (sigma_{n+1} - sigma_n), here divided by its mean
    # over the grid), which keeps the low-noise intervals from being drowned by the high-noise
    # ones; `interval_weights`
    weighting: Weighting = "uniform"
    sigma_data: float = 0.5  # data std in c_skip / c_out (EDM, Karras et al. 2022; Song 2023)
    guidance: float = 1.0  # teacher classifier-free guidance scale the student learns
    sample_steps: int = 2  # default sampling steps (Song et al. 2023 CD: 2 steps beat 1)
    recon_t: int | None = None  # default t_start of reconstruct (None: T // 4)
    # clamp x0_hat of bounded images to [-1, 1] inside f: at t near T the eps parameterisation
    # multiplies a student eps error by 1 / sqrt(alpha_bar_T), about 150 (linear schedule)
    clip_x0: bool = True
    # what the student's network output is read as: "v" (Salimans & Ho 2022, sec. 4 and App. D:
    # x0 = sqrt(ab) x_t - sqrt(1 - ab) v, no 1 / sqrt(ab) amplification of the output's error
    # at low SNR; the 256-px ldm student that diverged as "eps" samples kidneys as "v") or
    # "eps"; a student read as its teacher's own `prediction` starts exactly as the teacher
    prediction: Prediction = "v"
    saved_defaults: ClassVar[Mapping[str, Any]] = {"clip_x0": False, "prediction": "eps"}

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("teacher_family", self.teacher_family, tuple(TEACHERS))
        check_choice("spacing", self.spacing, SPACINGS)
        check_choice("distance", self.distance, get_args(Distance))
        check_choice("weighting", self.weighting, get_args(Weighting))
        check_choice("prediction", self.prediction, get_args(Prediction))
        if not isinstance(self.teacher, dict):
            raise UserError(f"teacher={self.teacher!r} must be a mapping of options")
        clash = sorted(set(self.teacher) & set(SHARED))
        if clash:
            raise UserError(f"set {', '.join(clash)} on the consistency model, not in its teacher options")
        if not 0.0 <= self.target_decay < 1.0:
            raise UserError(f"target_decay={self.target_decay} must be in [0, 1)")
        check_positive("sigma_data", self.sigma_data)
        if not 0.0 <= self.guidance <= 1000.0:
            raise UserError(f"guidance={self.guidance} must be in [0, 1000]")
        teacher = self.teacher_config  # validates the teacher options
        object.__setattr__(self, "teacher",  # canonical record: every option, JSON form
                           {k: v for k, v in to_dict(teacher).items() if k not in SHARED})
        T = self.diffusion_config.num_train_timesteps
        if not 2 <= self.num_scales <= T:
            raise UserError(f"num_scales={self.num_scales} must be in 2..{T} (the teacher's T)")
        if not 1 <= self.sample_steps < self.num_scales:
            raise UserError(f"sample_steps={self.sample_steps} must be in 1..{self.num_scales - 1}")
        if self.recon_t is not None and not 0 <= self.recon_t < T:
            raise UserError(f"recon_t={self.recon_t} must be in 0..{T - 1}")

    @property
    def teacher_config(self) -> ModelConfig:
        shared = {name: getattr(self, name) for name in SHARED}
        cls = TEACHERS[self.teacher_family][0]  # a record from before a field: saved_defaults
        return from_dict(cls, {**cls.saved_defaults, **self.teacher, **shared},
                         where=f"consistency teacher ({self.teacher_family})")

    @property
    def diffusion_config(self) -> DiffusionConfig:
        """The teacher's diffusion part (an ldm's latent UNet), which the student copies."""
        cfg = self.teacher_config
        return cfg.latent_config if isinstance(cfg, LDMConfig) else cfg  # type: ignore[return-value]


def consistency_scalings(ab: Tensor, ab_min: float, sigma_data: float) -> tuple[Tensor, Tensor]:
    """(c_skip, c_out) at alpha_bar `ab` (Song et al. 2023, Appendix C) with sigma =
    sqrt((1 - ab) / ab), sigma_min from `ab_min`; c_out already divided by sigma_data (it
    multiplies the denoised estimate x0_hat, not a unit-variance F)."""
    sigma = ((1 - ab) / ab).sqrt()
    s = sigma - math.sqrt((1 - ab_min) / ab_min)
    c_skip = sigma_data**2 / (s**2 + sigma_data**2)
    c_out = s / (sigma_data**2 + sigma**2).sqrt()
    return c_skip, c_out


def interval_weights(ab: Tensor, kind: Weighting) -> Tensor:
    """lambda per grid interval (N - 1,) from alpha_bar at the N ascending grid times `ab`:
    ones ("uniform"), or 1 / (sigma_{n+1} - sigma_n) with sigma = sqrt((1 - ab) / ab) divided by
    its mean ("ict", Song & Dhariwal 2023, sec. 3.4), so the mean weight is 1 either way."""
    if kind == "uniform":
        return torch.ones(len(ab) - 1, dtype=ab.dtype)
    sigma = ((1 - ab) / ab).sqrt()
    w = 1.0 / (sigma[1:] - sigma[:-1])
    return w / w.mean()


def consistency_distance(a: Tensor, b: Tensor, kind: Distance) -> Tensor:
    """Per-sample distance (B,): "l2" mean squared error over elements; "pseudo_huber"
    sqrt(|a - b|^2 + c^2) - c, c = 0.00054 sqrt(d) (Song & Dhariwal 2023, sec. 3.3)."""
    diff = (a.float() - b.float()).flatten(1)
    if kind == "l2":
        return diff.pow(2).mean(1)
    c = 0.00054 * math.sqrt(diff.shape[1])
    return (diff.pow(2).sum(1) + c * c).sqrt() - c


class ConsistencyDenoiser:
    """A consistency function f(x, t, labels) -> x_0 as a `Denoiser` (eps = x0_to_eps), so the
    stateless samplers' one contract holds; `clip` clamps f to [-1, 1] (bounded images)."""

    def __init__(self, f, alpha_bar: Tensor, clip: bool = False) -> None:
        self.f, self.alpha_bar, self.clip = f, alpha_bar, clip

    def __call__(self, x: Tensor, t: Tensor, *, cond: Tensor | None = None,
                 guidance: float = 1.0) -> Tensor:
        x0 = self.f(x, t, cond)
        if self.clip:
            x0 = x0.clamp(-1, 1)
        return x0_to_eps(x, x0, self.alpha_bar.to(x.device, x.dtype)[t])


class ConsistencyModel(GenerativeModel):
    """Frozen teacher + student (+ target network when target_decay > 0); phase "main" trains
    the student."""

    family = "consistency"

    def __init__(self, config: ConsistencyConfig) -> None:
        super().__init__()
        self.config = config
        self.teacher = TEACHERS[config.teacher_family][1](config.teacher_config)
        self.teacher.requires_grad_(False)
        self.student = DiffusionModel(config.diffusion_config)
        self.target = (copy.deepcopy(self.student).requires_grad_(False)
                       if config.target_decay > 0 else None)
        ab = self.student.alpha_bar64
        self.grid = timestep_grid(ab, config.num_scales, config.spacing).flip(0)  # (N,) ascending, CPU
        self.ab_min = float(ab[0])
        self.weights = interval_weights(ab[self.grid], config.weighting).float()  # (N - 1,), CPU
        self.teacher.eval()

    @property
    def teacher_diffusion(self) -> DiffusionModel:
        """The teacher's diffusion part (its latent UNet for an ldm teacher)."""
        return self.teacher.diffusion if isinstance(self.teacher, LatentDiffusionModel) else self.teacher  # type: ignore[return-value]

    def train(self, mode: bool = True) -> ConsistencyModel:
        """Train/eval mode for the student; teacher and target stay in eval."""
        super().train(mode)
        self.teacher.eval()
        if self.target is not None:
            self.target.eval()
        return self

    def phase_parameters(self, phase: str) -> Iterator[nn.Parameter]:
        check_choice("phase", phase, self.phases())
        return self.student.parameters()

    # -- the space the diffusion model lives in (images, or an ldm's scaled latents) ---------
    def encode(self, x: Tensor, *, sample: bool = True) -> Tensor:
        if isinstance(self.teacher, LatentDiffusionModel):
            return self.teacher.encode(x, sample=sample)
        return x

    def decode(self, z: Tensor) -> Tensor:
        if isinstance(self.teacher, LatentDiffusionModel):
            return self.teacher.decode(z)
        return z.clamp(-1, 1) if self.student.bounded_images else z

    # -- the consistency function ------------------------------------------------------------
    def consistency(self, net: DiffusionModel, x: Tensor, t: Tensor, labels: Tensor | None,
                    image_cond: Tensor | None = None) -> Tensor:
        """f(x_t, t) of `net` (student or target) at integer times t (B,), see module doc."""
        ab = self.student.alpha_bar[t]
        out = net.denoiser(clip_x0=False, image_cond=image_cond)(x, t, cond=labels)
        c_skip, c_out = consistency_scalings(ab, self.ab_min, self.config.sigma_data)
        x0 = (v_to_x0 if self.config.prediction == "v" else eps_to_x0)(x, out, ab)
        if self.config.clip_x0 and self.student.bounded_images:
            x0 = x0.clamp(-1, 1)
        return broadcast(c_skip, x) * x / broadcast(ab.sqrt(), x) + broadcast(c_out, x) * x0

    @torch.no_grad()
    def update_target(self) -> None:
        """theta- <- mu theta- + (1 - mu) theta (Song et al. 2023, Algorithm 2, last line)."""
        if self.target is None:
            return
        mu = self.config.target_decay
        for p_t, p_s in zip(self.target.parameters(), self.student.parameters()):
            p_t.lerp_(p_s.detach(), 1 - mu)

    def loss(self, batch: Batch, phase: str = "main") -> dict[str, Tensor]:
        """Per-sample consistency distillation loss (B,) (Algorithm 2, lambda from `weighting`)."""
        check_choice("phase", phase, self.phases())
        if self.training:
            self.update_target()
        x0 = self.encode(batch["image"])
        b, dev = x0.shape[0], x0.device
        grid = self.grid.to(dev)
        n = torch.randint(0, len(grid) - 1, (b,), device=dev)
        t_next, t_cur = grid[n + 1], grid[n]
        x_next = self.student.q_sample(x0, t_next, torch.randn_like(x0))
        labels = batch_labels(batch, self.config.num_classes, dev)
        if labels is not None:
            drop = torch.rand(b, device=dev) < self.student.config.cond_drop_prob
            labels = torch.where(drop, torch.full_like(labels, self.student.null_class), labels)
        image_cond = batch["cond"].to(x0.dtype) if self.student.config.cond_channels else None
        with torch.no_grad():
            teacher = self.teacher_diffusion.denoiser(image_cond=image_cond)
            eps = teacher(x_next, t_next, cond=labels, guidance=self.config.guidance)
            ab_next, ab_cur = self.student.alpha_bar[t_next], self.student.alpha_bar[t_cur]
            # DDIM (eta = 0) from t_{n+1} to t_n: x = sqrt(ab_n) x0_hat + sqrt(1 - ab_n) eps
            x_cur = (broadcast(ab_cur.sqrt(), x0) * eps_to_x0(x_next, eps, ab_next)
                     + broadcast((1 - ab_cur).sqrt(), x0) * eps)
            target = self.consistency(self.target or self.student, x_cur, t_cur, labels, image_cond)
        pred = self.consistency(self.student, x_next, t_next, labels, image_cond)
        weight = self.weights.to(dev)[n]
        return {"loss": weight * consistency_distance(pred, target, self.config.distance)}

    # -- sampling ------------------------------------------------------------------------------
    def sample_times(self, steps: int | None = None) -> Tensor:
        """The `steps` descending times of multistep sampling: t = T-1 first, then evenly
        spaced indices of the training grid (so on its `spacing`), ending before t = 0."""
        steps = self.config.sample_steps if steps is None else int(steps)
        n = len(self.grid)
        if not 1 <= steps < n:
            raise UserError(f"steps={steps}: a consistency model samples in 1..{n - 1} steps "
                            f"(num_scales={n})")
        idx = torch.linspace(n - 1, 0, steps + 1).round().long()[:-1]
        return self.grid[idx]

    def denoiser(self, image_cond: Tensor | None = None) -> ConsistencyDenoiser:
        """The student's consistency function as a `Denoiser`."""
        return ConsistencyDenoiser(
            lambda x, t, c: self.consistency(self.student, x, t, c, image_cond),
            self.student.alpha_bar, clip=self.student.bounded_images)

    def sample(self, n: int, cond: Tensor | None = None, steps: int | None = None,
               generator: torch.Generator | None = None, *, sampler: str | None = None,
               progress: bool = False, image_cond: Tensor | None = None) -> Tensor:
        """`n` samples in `steps` (default config.sample_steps) evaluations of the student
        (Song et al. 2023, Algorithm 1); `cond` class labels, `image_cond` an image condition."""
        check_positive("n", n)
        if sampler is not None:
            check_choice("sampler", sampler, ("consistency",))
        cond = check_labels(cond, self.config.num_classes, n)
        image_cond = self.student.check_image_cond(image_cond, n)
        device = self.student.alpha_bar.device
        x = randn((n, *self.student.config.sample_shape), generator, device)
        schedule = DiscreteSchedule(self.student.alpha_bar64, self.sample_times(steps))
        with evaluating(self):
            z = sample_consistency(self.denoiser(image_cond), x, schedule,
                                   cond=None if cond is None else cond.to(device),
                                   generator=generator, progress=progress)
            return self.decode(z)

    def preview(self, batch: Batch, steps: int | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        """As `DiffusionModel.preview`: the batch's own image conditions when it takes one."""
        if not self.student.config.cond_channels:
            return super().preview(batch, steps, generator)
        image_cond = batch["cond"].to(self.student.alpha_bar.device)
        labels = batch_labels(batch, self.config.num_classes, image_cond.device)
        return self.sample(len(image_cond), cond=labels, steps=steps, generator=generator,
                           image_cond=image_cond)

    def reconstruct(self, x: Tensor, t_start: int | None = None, *, cond: Tensor | None = None,
                    generator: torch.Generator | None = None, image_cond: Tensor | None = None,
                    **_: Any) -> Tensor:
        """One-step SDEdit (Meng et al. 2022): noise to `t_start` (default recon_t, else
        T // 4), map back with the consistency function (Song et al. 2023, sec. 6)."""
        T = self.student.config.num_train_timesteps
        t0 = (self.config.recon_t if self.config.recon_t is not None else T // 4) \
            if t_start is None else int(t_start)
        if not 0 <= t0 < T:
            raise UserError(f"t_start={t0} must be in 0..{T - 1}")
        cond = check_labels(cond, self.config.num_classes, x.shape[0])
        image_cond = self.student.check_image_cond(image_cond, x.shape[0])
        with evaluating(self):
            z = self.encode(x, sample=False)
            tt = torch.full((x.shape[0],), t0, dtype=torch.long, device=z.device)
            zt = self.student.q_sample(z, tt, randn(tuple(z.shape), generator, z.device, z.dtype))
            return self.decode(self.denoiser(image_cond).f(zt, tt, cond))

    def anomaly_score(self, x: Tensor, t_start: int | None = None, *, n_draws: int = 3,
                      generator: torch.Generator | None = None, **_: Any) -> Tensor:
        """(B,) mean squared error of `reconstruct` over `n_draws` noise draws (AnoDDPM-style,
        Wyatt et al. 2022, in one step); higher = more anomalous."""
        check_positive("n_draws", n_draws)
        errs = [(self.reconstruct(x, t_start, generator=generator) - x).pow(2).flatten(1).mean(1)
                for _ in range(n_draws)]
        return torch.stack(errs).mean(0)


def consistency_from_teacher(teacher: GenerativeModel, /, *, teacher_run: str = "",
                             **options: Any) -> ConsistencyModel:
    """A new consistency model distilling the trained `teacher` (a diffusion or ldm model):
    the teacher's weights copied (frozen), the student and target initialised from them;
    `options` are `ConsistencyConfig` fields (num_scales, guidance, ...)."""
    if teacher.family not in TEACHERS:
        raise UserError(f"{teacher_run or 'teacher'}: a {teacher.family} model cannot be "
                        f"distilled; the teacher must be a {' or '.join(TEACHERS)} run")
    for key in ("teacher", "teacher_family", *SHARED):
        if key in options:
            raise UserError(f"{key} comes from the teacher; drop it from the options")
    cfg = teacher.config
    data = dict({name: getattr(cfg, name) for name in SHARED}, teacher_family=teacher.family,
                teacher={k: v for k, v in to_dict(cfg).items() if k not in SHARED},
                teacher_run=teacher_run, **options)
    config = from_dict(ConsistencyConfig, data, where="consistency options")
    if config.guidance != 1.0 and not config.num_classes:  # no labels: the teacher ignores it
        raise UserError(f"guidance={config.guidance:g}: {teacher_run or 'the teacher'} is not "
                        "class-conditional, so guidance changes nothing; drop it")
    model = ConsistencyModel(config)
    model.teacher.load_state_dict(teacher.state_dict())
    model.student.load_state_dict(model.teacher_diffusion.state_dict())
    if model.target is not None:
        model.target.load_state_dict(model.student.state_dict())
    return model.to(next(teacher.parameters()).device)
