"""`genmed.train.fit`: the engine on in-memory data, with the model's own recipe."""

from __future__ import annotations

import torch

from genmed.models import build_model
from genmed.train import DictDataset
from genmed.train.run import load_config_of
from genmed.train.fitting import fit


def test_fit_trains_a_variant_by_its_own_recipe(tmp_path):
    """A resnet_r1 GAN built by hand and given to `fit` takes its variant's recipe (StyleGAN2's
    Adam betas (0, 0.99), constant LR), as `genmed train --family gan` would, not DCGAN's."""
    data = DictDataset(image=torch.rand(8, 1, 32, 32) * 2 - 1)
    model = build_model("gan", size=32, variant="resnet_r1", base_channels=8, max_channels=8)
    fit(model, data, steps=1, batch_size=4, out=tmp_path / "run")
    cfg = load_config_of(tmp_path / "run")
    assert tuple(cfg.betas) == (0.0, 0.99) and cfg.schedule == "constant"
    assert cfg.options["variant"] == "resnet_r1"
