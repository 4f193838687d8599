"""The residual generator's shared class embedding (BigGAN, Brock et al. 2019): the label
reaches G through z and every BatchNorm from the first step, G learns a local class feature
that per-class BatchNorm tables leave out, and runs saved before the option load as they were."""

from __future__ import annotations

import pytest
import torch

from genmed.errors import UserError
from genmed.models import build_model

from _modelkit import label_patch_effect, train_class_toy


def _gan(**kw):
    return build_model("gan", **{**dict(variant="resnet_r1", size=16, base_channels=8, max_channels=16,
                                        latent_dim=16, num_classes=2, class_embedding=64), **kw})


def test_the_label_moves_an_untrained_generator_only_through_the_shared_embedding() -> None:
    torch.manual_seed(0)
    tables = _gan(class_embedding=0)
    assert label_patch_effect(tables, region=...) == 0.0  # equal rows: the label changes nothing
    torch.manual_seed(0)
    shared = _gan()
    assert build_model("gan", variant="resnet_r1", size=16, num_classes=2).config.class_embedding == 0  # off by default
    z = torch.randn(8, 16)
    x0, x1 = (shared.generate(z, torch.full((8,), c)) for c in (0, 1))
    assert (x0 - x1).abs().mean() > 0.05
    with pytest.raises(ValueError, match="needs labels"):
        shared.generator(z)
    assert _gan(num_classes=0).generator.embed is None  # unconditional: no embedding


def _train(class_embedding: int, seed: int) -> tuple[float, float]:
    torch.manual_seed(seed)
    return train_class_toy(_gan(class_embedding=class_embedding), seed)


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
