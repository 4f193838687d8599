"""Diffusion specifics: SDEdit-style reconstruction depth, samplers by name, label checks."""

from __future__ import annotations

import pytest
import torch

from genmed.errors import UserError
from genmed.models import build_model


def _model(**kw):
    return build_model("diffusion", size=16, channels=(8, 16), attention_levels=(False, False),
                       norm_num_groups=4, num_train_timesteps=100, **kw)


def test_reconstruction_error_grows_with_noise_level() -> None:
    torch.manual_seed(0)
    model = _model()
    x = torch.rand(4, 1, 16, 16) * 2 - 1
    errs = [float(model.anomaly_score(x, t, n_draws=2, generator=torch.Generator().manual_seed(0)).mean())
            for t in (0, 50, 99)]
    assert errs[0] < 0.01 < min(errs[1], errs[2])  # t=0 keeps the image, deeper noise resamples it
    with pytest.raises(UserError, match="t_start=100"):
        model.reconstruct(x, 100)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "dpmpp_2m"])
def test_every_sampler_by_name(sampler: str) -> None:
    model = _model(num_classes=2)
    out = model.sample(2, cond=torch.tensor([0, 1]), steps=4, sampler=sampler, guidance=2.0,
                       generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 1, 16, 16) and out.abs().max() <= 1


def test_label_errors() -> None:
    with pytest.raises(UserError, match="unconditional"):
        _model().sample(2, cond=torch.tensor([0, 1]))
    with pytest.raises(UserError, match="0..1"):
        _model(num_classes=2).sample(2, cond=torch.tensor([0, 2]))
    with pytest.raises(UserError, match="no 'label'"):
        _model(num_classes=2)({"image": torch.zeros(2, 1, 16, 16)})
    with pytest.raises(UserError, match="sampler='heun'"):
        _model().sample(1, sampler="heun")
