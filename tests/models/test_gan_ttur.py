"""Two time-scale update rule (TTUR, Heusel et al. 2017): the GAN's discriminator trains at
`d_lr_scale` times the recipe's learning rate, the generator at the recipe's."""

from __future__ import annotations

import json

import pytest
import torch

from genmed.errors import UserError
from genmed.models import build_model
from genmed.train import DictDataset
from genmed.train.fitting import fit


def _moves(scale: float, tmp_path) -> tuple[float, float]:
    """Mean |weight change| of D and of G over one engine step from the same start."""
    torch.manual_seed(0)
    model = build_model("gan", size=32, variant="resnet_r1", base_channels=8, max_channels=8,
                        d_lr_scale=scale)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = DictDataset(image=torch.rand(8, 1, 32, 32) * 2 - 1)
    fit(model, data, steps=1, batch_size=8, lr=1e-4, weight_decay=0.0, ema_decay=0.0,
        out=tmp_path / f"run{scale}", log_every=1)
    after = model.state_dict()

    def move(prefix: str) -> float:
        keys = [k for k, v in before.items() if k.startswith(prefix) and v.is_floating_point()
                and k.endswith("weight")]
        return float(torch.cat([(after[k] - before[k]).abs().flatten() for k in keys]).mean())
    return move("discriminator."), move("generator.")


def test_discriminator_steps_at_its_own_multiple_of_the_learning_rate(tmp_path):
    d1, g1 = _moves(1.0, tmp_path)
    d4, g4 = _moves(4.0, tmp_path)
    assert 3.5 < d4 / d1 < 4.5  # Adam's first step is lr * sign(grad) per weight
    assert 0.8 < g4 / g1 < 1.25  # G keeps the recipe's rate
    record = json.loads((tmp_path / "run4.0" / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["lr"] == pytest.approx(1e-4)
    assert record["discriminator/lr"] == pytest.approx(4e-4)
    assert "generator/lr" not in record
    plain = json.loads((tmp_path / "run1.0" / "metrics.jsonl").read_text().splitlines()[-1])
    assert "discriminator/lr" not in plain  # one rate for every phase: logged once


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), 1e6])
def test_bad_scales_are_user_errors(bad):
    with pytest.raises(UserError, match="d_lr_scale"):
        build_model("gan", size=32, variant="resnet_r1", d_lr_scale=bad)
