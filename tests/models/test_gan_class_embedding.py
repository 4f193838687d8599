"""The residual generator's shared class embedding (BigGAN, Brock et al. 2019): the label
reaches G through z and every BatchNorm from the first step, G learns a local class feature
that per-class BatchNorm tables leave out, and runs saved before the option load as they were."""

from __future__ import annotations

import pytest
import torch

from genmed.errors import UserError
from genmed.models import build_model

LESION = (..., slice(6, 10), slice(3, 7))  # a 4 x 4 px patch that only class 1 has bright


def _gan(**kw):
    return build_model("gan", **{**dict(variant="resnet_r1", size=16, base_channels=8, max_channels=16,
                                        latent_dim=16, num_classes=2, class_embedding=64), **kw})


def _label_effect(model, region=LESION) -> float:
    """Mean over 128 latents of G(z, 1) - G(z, 0) inside `region`, in [-1, 1] units."""
    z = torch.randn(128, 16, generator=torch.Generator().manual_seed(1))
    model.eval()
    with torch.no_grad():
        a, b = (model.generate(z, torch.full((128,), c))[region].mean() for c in (0, 1))
    model.train()
    return float(b - a)


def test_the_label_moves_an_untrained_generator_only_through_the_shared_embedding() -> None:
    torch.manual_seed(0)
    tables = _gan(class_embedding=0)
    assert _label_effect(tables, region=...) == 0.0  # equal rows: the label changes nothing
    torch.manual_seed(0)
    shared = _gan()
    assert build_model("gan", variant="resnet_r1", size=16, num_classes=2).config.class_embedding == 0  # off by default
    z = torch.randn(8, 16)
    x0, x1 = (shared.generate(z, torch.full((8,), c)) for c in (0, 1))
    assert (x0 - x1).abs().mean() > 0.05
    with pytest.raises(ValueError, match="needs labels"):
        shared.generator(z)
    assert _gan(num_classes=0).generator.embed is None  # unconditional: no embedding


def _train(class_embedding: int, seed: int, steps: int = 100) -> tuple[float, float]:
    """(learned label effect in the patch, the data's) after `steps` steps on 16-px ellipse
    phantoms, 25% of them class 1 with the patch at +1 (a "lesion" at a fixed place)."""
    from _modelkit import ellipse_images

    torch.manual_seed(seed)
    base = ellipse_images(256, 16)
    labels = (torch.arange(256) % 4 == 0).long()
    lesion = base.clone()
    lesion[LESION] = 1.0
    data = torch.where(labels.view(-1, 1, 1, 1).bool(), lesion, base)
    model = _gan(class_embedding=class_embedding)
    opts = {p: torch.optim.Adam(model.phase_parameters(p), lr=2e-3, betas=(0.0, 0.99)) for p in model.phases()}
    g = torch.Generator().manual_seed(0)
    for step in range(steps):
        idx = torch.randint(0, 256, (16,), generator=g)
        batch = {"image": data[idx], "label": labels[idx], "step": torch.tensor(step)}
        for phase in model.phases():
            model.zero_grad(set_to_none=True)
            model(batch, phase)["loss"].mean().backward()
            opts[phase].step()
    real = float(data[labels == 1][LESION].mean() - data[labels == 0][LESION].mean())
    return _label_effect(model), real


def test_the_shared_embedding_learns_a_local_class_feature_that_tables_miss() -> None:
    """Seeds 0 and 1, 100 steps: shared 0.60 / 0.75 of the data's 0.84, tables 0.29 / 0.15."""
    shared = [_train(64, s) for s in (0, 1)]
    tables = [_train(0, s) for s in (0, 1)]
    real = shared[0][1]
    mean_shared = sum(e for e, _ in shared) / 2
    mean_tables = sum(e for e, _ in tables) / 2
    assert mean_shared > 0.6 * real, (shared, real)
    assert mean_shared > 2 * mean_tables, (shared, tables)


def test_runs_saved_before_the_option_rebuild_with_tables_and_their_weights_load() -> None:
    from genmed.config import to_dict
    from genmed.models import build_model_from_config

    old = _gan(class_embedding=0)
    saved = {k: v for k, v in to_dict(old.config).items() if k != "class_embedding"}
    rebuilt = build_model_from_config("gan", saved)
    assert rebuilt.config.class_embedding == 0
    rebuilt.load_state_dict(old.state_dict())  # same keys and shapes
    assert to_dict(_gan().config)["class_embedding"] == 64
    for kw in (dict(variant="dcgan", size=16, num_classes=2, class_embedding=8),
               dict(data_kind="vector", size=2, class_embedding=8)):
        with pytest.raises(UserError, match="class_embedding"):
            build_model("gan", **kw)
    with pytest.raises(UserError, match="class_embedding"):
        _gan(class_embedding=-1)
