"""Simplex noise and the diffusion family trained with it (AnoDDPM)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genmed.errors import UserError
from genmed.models import build_model, build_model_from_config, model_config_dict
from genmed.models.simplex import simplex_noise


def test_simplex_noise_is_unit_variance_low_frequency_and_seeded():
    n = simplex_noise((8, 64, 64), cell_px=16.0, octaves=4, generator=torch.Generator().manual_seed(0))
    flat = n.reshape(8, -1)
    assert torch.allclose(flat.mean(1), torch.zeros(8), atol=1e-5)
    assert torch.allclose(flat.var(1), torch.ones(8), atol=1e-4)
    power = np.abs(np.fft.fft2(n.numpy())) ** 2
    f = np.fft.fftfreq(64)
    low = np.hypot(f[:, None], f[None, :]) < 0.125  # 4.9 % of the frequency plane
    assert power[:, low].sum() / power.sum() > 0.4  # white noise: about 0.05
    again = simplex_noise((8, 64, 64), cell_px=16.0, octaves=4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(n, again)
    other = simplex_noise((8, 64, 64), cell_px=16.0, octaves=4, generator=torch.Generator().manual_seed(1))
    assert (n - other).abs().mean() > 0.5
    # neighbouring pixels are strongly correlated (white noise: ~0)
    assert np.corrcoef(n[:, :, :-1].flatten(), n[:, :, 1:].flatten())[0, 1] > 0.7
    assert simplex_noise((2, 3, 16, 16), cell_px=8.0, octaves=2).shape == (2, 3, 16, 16)


def test_simplex_diffusion_trains_on_simplex_noise_and_rebuilds_from_its_config():
    model = build_model("diffusion", size=16, channels=(8, 16), attention_levels=(False, False),
                        norm_num_groups=4, noise="simplex", simplex_cell_px=8.0, simplex_octaves=2)
    x = torch.zeros(4, 1, 16, 16)
    n = model.noise_like(x, torch.Generator().manual_seed(0))
    assert np.corrcoef(n[:, :, :, :-1].flatten(), n[:, :, :, 1:].flatten())[0, 1] > 0.5  # not white
    assert model({"image": x})["loss"].shape == (4,)
    clone = build_model_from_config("diffusion", model_config_dict(model)["config"])
    assert clone.config.noise == "simplex" and clone.config.simplex_cell_px == 8.0
    gauss = build_model("diffusion", size=16, channels=(8, 16), attention_levels=(False, False),
                        norm_num_groups=4)
    w = gauss.noise_like(torch.zeros(64, 1, 16, 16), torch.Generator().manual_seed(0))
    assert abs(np.corrcoef(w[..., :-1].flatten(), w[..., 1:].flatten())[0, 1]) < 0.05
    with pytest.raises(UserError, match="2-D images"):
        build_model("diffusion", data_kind="vector", size=2, noise="simplex")
