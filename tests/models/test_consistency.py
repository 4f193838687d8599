"""Consistency distillation (Song et al. 2023) against a closed-form teacher: the exact
denoiser of a 1-D two-component Gaussian mixture under the DDPM forward process.

The student starts as the teacher (exact eps plus a small MLP correction whose last layer is
zero: the function-space analogue of copying a trained teacher's weights), is trained by the
engine, reloaded from its run, and sampled in 1 and 2 steps. One step of the teacher itself
returns E[x0 | x_T], about the data mean: a collapsed distribution.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from genmed.errors import UserError
from genmed.models import build_model
from genmed.models.consistency import ConsistencyModel, consistency_scalings
from genmed.models.nets import VectorDenoiserMLP
from genmed.models.samplers import sample_ddim
from genmed.models.schedules import schedule_from_alpha_bar

W, MU, S = torch.tensor([0.5, 0.5]), torch.tensor([-0.7, 0.7]), torch.tensor([0.3, 0.3])


class MixtureEps(nn.Module):
    """Exact eps of the mixture at x_t = sqrt(ab) x0 + sqrt(1 - ab) eps: each component stays
    Gaussian, N(a mu_k, a^2 s_k^2 + 1 - ab); eps = -sqrt(1 - ab) * score."""

    def __init__(self, ab: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("ab", ab.float())

    def forward(self, x, timesteps, class_labels=None):
        ab = self.ab[timesteps][:, None]
        a, var = ab.sqrt(), ab * S**2 + (1 - ab)
        resp = (W.log() - 0.5 * (x - a * MU) ** 2 / var - 0.5 * var.log()).softmax(-1)
        score = (resp * (-(x - a * MU) / var)).sum(-1, keepdim=True)
        return -(1 - ab).sqrt() * score


class Student(nn.Module):
    """Starts equal to the teacher: exact eps + an MLP correction with a zero last layer."""

    def __init__(self, ab: torch.Tensor) -> None:
        super().__init__()
        self.exact, self.mlp = MixtureEps(ab), VectorDenoiserMLP(1, 64, 2)
        nn.init.zeros_(self.mlp.out[-1].weight)
        nn.init.zeros_(self.mlp.out[-1].bias)

    def forward(self, x, timesteps, class_labels=None):
        return self.exact(x, timesteps) + self.mlp(x, timesteps)


class Points(Dataset):
    def __init__(self, n: int, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        k = torch.randint(0, 2, (n,), generator=g)
        self.x = (MU[k] + S[k] * torch.randn(n, generator=g))[:, None]

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.x[i]}


def distilled_pair() -> ConsistencyModel:
    model = build_model("consistency", data_kind="vector", size=1,
                        teacher=dict(hidden=8, depth=1), num_scales=20, prediction="eps")
    ab = model.student.alpha_bar64
    model.teacher.net, model.student.net = MixtureEps(ab), Student(ab)
    return model


def w1(a: torch.Tensor, b: torch.Tensor) -> float:
    """1-D Wasserstein-1 distance of two equal-size samples (sorted differences)."""
    return float((a.flatten().sort().values - b.flatten().sort().values).abs().mean())


def test_scalings_meet_the_boundary_condition() -> None:
    ab = torch.tensor([0.9999, 0.5, 1e-4], dtype=torch.float64)
    c_skip, c_out = consistency_scalings(ab, 0.9999, 0.5)
    assert c_skip[0] == 1 and c_out[0] == 0  # f(x, t_min) = x exactly
    assert c_skip[2] < 1e-4 and abs(c_out[2] - 1) < 1e-3  # high noise: the x0 estimate


def test_student_reproduces_the_teacher_distribution_in_one_and_two_steps(tmp_path) -> None:
    from genmed.train import TrainConfig, load_run, train

    torch.manual_seed(0)
    model = distilled_pair()
    ab = model.student.alpha_bar64
    z = torch.randn(4000, 1, generator=torch.Generator().manual_seed(1))
    teacher = model.teacher.denoiser()
    ref = sample_ddim(teacher, z, schedule_from_alpha_bar(ab, 200))
    teacher_one = sample_ddim(teacher, z, schedule_from_alpha_bar(ab, 1))
    untrained = model.sample(4000, steps=1, generator=torch.Generator().manual_seed(2))
    cfg = TrainConfig(family="consistency", recipe="toy", size=1, steps=600, batch_size=512,
                      lr=1e-4, ema_decay=0.99, ema_warmup=False, precision="fp32", device="cpu",
                      log_every=100, ckpt_every=600, ckpt_minutes=0, sample_n=4,
                      out=str(tmp_path / "student"))
    train(cfg, model=model, dataset=Points(4096))
    student, _ = load_run(tmp_path / "student", model=distilled_pair())
    got = {k: student.sample(4000, steps=k, generator=torch.Generator().manual_seed(2))
           for k in (1, 2)}
    d_teacher_one, d_untrained = w1(teacher_one, ref), w1(untrained, ref)
    d = {k: w1(x, ref) for k, x in got.items()}
    print(f"W1 to teacher-200: teacher 1-step {d_teacher_one:.3f}, untrained student "
          f"{d_untrained:.3f}, student 1-step {d[1]:.3f}, 2-step {d[2]:.3f}; std ref "
          f"{ref.std():.3f}, teacher 1-step {teacher_one.std():.3f}, student "
          f"{got[1].std():.3f} / {got[2].std():.3f}")
    assert teacher_one.std() < 0.05 and d_teacher_one > 0.5  # the blurry mean
    assert d_untrained > 0.5  # the test can fail: before training the student is the teacher
    for k, x in got.items():
        assert d[k] < 0.25 and d[k] < 0.4 * d_teacher_one, (k, d[k])
        assert abs(float(x.mean() - ref.mean())) < 0.1
        assert abs(float(x.std() / ref.std()) - 1) < 0.2


def test_sampling_steps_are_checked() -> None:
    model = distilled_pair()
    with pytest.raises(UserError, match="1..19 steps"):
        model.sample(2, steps=20)
    with pytest.raises(UserError, match="sampler"):
        model.sample(2, sampler="ddim")
    times = model.sample_times(4)
    assert times[0] == 999 and len(times) == 4 and bool((times[:-1] > times[1:]).all())


def test_an_ldm_teacher_is_distilled_in_its_latent_space() -> None:
    from genmed.models import build_model_from_config, consistency_from_teacher, model_config_dict

    ldm = build_model("ldm", size=16, num_classes=2,
                      autoencoder=dict(channels=(4, 4), norm_num_groups=4, latent_channels=2),
                      channels=(8, 16), attention_levels=(False, True), norm_num_groups=4,
                      num_train_timesteps=50)
    model = consistency_from_teacher(ldm, num_scales=8, guidance=1.5)
    assert model.student.config.in_channels == 2 and model.student.config.size == 8
    batch = {"image": torch.rand(3, 1, 16, 16) * 2 - 1, "label": torch.tensor([0, 1, 1])}
    loss = model(batch)["loss"]
    assert loss.shape == (3,) and torch.isfinite(loss).all()
    saved = model_config_dict(model)
    clone = build_model_from_config(saved["family"], saved["config"])
    clone.load_state_dict(model.state_dict())
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    a = model.sample(2, cond=torch.tensor([0, 1]), steps=1, generator=g())
    assert a.shape == (2, 1, 16, 16)
    assert torch.allclose(a, clone.sample(2, cond=torch.tensor([0, 1]), steps=1, generator=g()))
    with pytest.raises(UserError, match="cannot be distilled"):
        consistency_from_teacher(build_model("vae", size=16, channels=(4, 8), latent_dim=4,
                                             num_res_units=0))


def test_clip_x0_bounds_f_of_bounded_images_at_high_noise() -> None:
    """At t = T - 1 an eps error of 0.01 becomes an x0 error of 0.01 / sqrt(alpha_bar), about
    150x; clip_x0 (the default) keeps f of images inside [-1, 1] plus the tiny skip term."""
    from genmed.models import consistency_from_teacher

    torch.manual_seed(0)
    teacher = build_model("diffusion", size=8, channels=(8, 8), attention_levels=(False, False),
                          norm_num_groups=8)
    x = torch.randn(4, 1, 8, 8)
    t = torch.full((4,), 999)
    ends = {}
    for clip in (False, True):
        model = consistency_from_teacher(teacher, num_scales=8, clip_x0=clip,
                                         prediction="eps").eval()
        with torch.no_grad():
            ends[clip] = model.consistency(model.student, x, t, None).abs().max().item()
    assert ends[False] > 5.0  # the untrained net's eps error, amplified
    assert ends[True] < 1.05


class Oracle(nn.Module):
    """Returns the exact eps or v of a known (x0, eps) pair, plus a constant error."""

    def __init__(self, x0, eps, ab, kind: str, error: float) -> None:
        super().__init__()
        self.x0, self.eps, self.ab, self.kind, self.error = x0, eps, ab, kind, error

    def forward(self, x, timesteps, class_labels=None, **_):
        a = self.ab[timesteps].float().sqrt().view(-1, 1, 1, 1)
        s = (1 - self.ab[timesteps].float()).sqrt().view(-1, 1, 1, 1)
        exact = self.eps if self.kind == "eps" else a * self.eps - s * self.x0
        return exact + self.error


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_v_prediction_does_not_amplify_the_output_error_at_high_noise(prediction) -> None:
    """Salimans & Ho 2022, sec. 4: the same 0.01 output error becomes an x0 error of
    0.01 / sqrt(alpha_bar) (about 157 at t = T - 1, linear schedule) read as eps, and of
    0.01 sqrt(1 - alpha_bar) read as v; exact outputs give x0 either way."""
    from genmed.models import consistency_from_teacher

    teacher = build_model("diffusion", size=8, channels=(8, 8), attention_levels=(False, False),
                          norm_num_groups=8)
    model = consistency_from_teacher(teacher, num_scales=8, clip_x0=False, prediction=prediction)
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.rand(2, 1, 8, 8, generator=g) * 2 - 1, torch.randn(2, 1, 8, 8, generator=g)
    ab = model.student.alpha_bar
    t = torch.full((2,), 999)
    xt = ab[999].sqrt() * x0 + (1 - ab[999]).sqrt() * eps
    errors = {}
    for error in (0.0, 0.01):
        model.student.net = Oracle(x0, eps, ab, prediction, error)
        with torch.no_grad():
            f = model.consistency(model.student, xt, t, None)
        # f = c_skip x_t / sqrt(ab) + c_out x0_hat; c_out -> 1, c_skip x_t / sqrt(ab) small
        c_skip, c_out = consistency_scalings(ab[t].double(), float(ab[0]), 0.5)
        x0_hat = (f - c_skip[0].float() * xt / ab[999].sqrt()) / c_out[0].float()
        errors[error] = float((x0_hat - x0).abs().max())
    assert errors[0.0] < 1e-3
    if prediction == "eps":
        assert errors[0.01] > 1.0  # amplified about 157x
    else:
        assert errors[0.01] < 0.011


def test_new_students_read_v_and_runs_saved_before_the_option_rebuild_as_eps() -> None:
    from genmed.models import build_model_from_config, consistency_from_teacher, model_config_dict

    teacher = build_model("diffusion", size=8, channels=(8, 8), attention_levels=(False, False),
                          norm_num_groups=8)
    saved = model_config_dict(consistency_from_teacher(teacher, num_scales=8))
    assert saved["config"]["prediction"] == "v"
    old = {k: v for k, v in saved["config"].items() if k != "prediction"}
    assert build_model_from_config("consistency", old).config.prediction == "eps"


def test_ict_weights_are_the_inverse_sigma_gaps_with_mean_one() -> None:
    from genmed.models.consistency import interval_weights

    ab = torch.tensor([0.99, 0.9, 0.5, 0.1], dtype=torch.float64)  # ascending times
    sigma = ((1 - ab) / ab).sqrt()  # 0.1005, 0.3333, 1.0, 3.0
    w = interval_weights(ab, "ict")
    raw = 1 / (sigma[1:] - sigma[:-1])
    assert torch.allclose(w, raw / raw.mean()) and abs(float(w.mean()) - 1) < 1e-12
    assert bool((w[:-1] > w[1:]).all())  # the low-noise intervals weigh most
    assert torch.equal(interval_weights(ab, "uniform"), torch.ones(3, dtype=torch.float64))


def test_ict_weighting_scales_each_sample_by_its_interval_weight() -> None:
    def loss_of(weighting: str) -> torch.Tensor:
        torch.manual_seed(0)
        model = build_model("consistency", data_kind="vector", size=1, weighting=weighting,
                            teacher=dict(hidden=8, depth=1), num_scales=20)
        torch.manual_seed(1)
        with torch.no_grad():
            return model.loss({"image": torch.randn(64, 1)})["loss"]

    model = build_model("consistency", data_kind="vector", size=1, weighting="ict",
                        teacher=dict(hidden=8, depth=1), num_scales=20)
    torch.manual_seed(1)
    torch.randn(64, 1)
    n = torch.randint(0, 19, (64,))  # the loss's draw of grid intervals
    ratio = loss_of("ict") / loss_of("uniform")
    assert torch.allclose(ratio, model.weights[n], rtol=1e-4)
    assert float(ratio.max() / ratio.min()) > 10  # the weighting is not uniform
    with pytest.raises(UserError, match="weighting"):
        build_model("consistency", data_kind="vector", size=1, weighting="snr",
                    teacher=dict(hidden=8, depth=1))
