"""Mode-seeking regulariser (MSGAN, Mao et al. 2019): the generator step pays 1 / (image
distance / latent distance) over pairs of its batch."""

from __future__ import annotations

import pytest
import torch

from genmed.errors import UserError
from genmed.models import build_model
from genmed.models.gan import mode_seeking_term


def test_term_matches_its_closed_form():
    x1, x2 = torch.zeros(3, 1, 4, 4), torch.full((3, 1, 4, 4), 2.0)
    z1, z2 = torch.zeros(3, 8), torch.ones(3, 8)
    assert float(mode_seeking_term(x1, x2, z1, z2)) == pytest.approx(1 / (2 + 1e-5))
    assert float(mode_seeking_term(x1, x1, z1, z2)) == pytest.approx(1e5)  # G ignores z


def _gan(**kw):
    return build_model("gan", size=32, variant="resnet_r1", base_channels=8, max_channels=8,
                       diffaug="", **kw)


def test_generator_loss_adds_the_weighted_term_and_its_gradient_spreads_samples():
    torch.manual_seed(0)
    model = _gan(mode_seeking=2.0)
    plain = _gan()
    plain.load_state_dict(model.state_dict())
    batch = {"image": torch.rand(8, 1, 32, 32) * 2 - 1}
    torch.manual_seed(1)
    out = model.loss(batch, "generator")
    torch.manual_seed(1)
    ref = plain.loss(batch, "generator")
    assert "mode_seeking" not in ref
    torch.testing.assert_close(out["loss"], ref["loss"] + 2.0 * out["mode_seeking"])
    # descending the term alone pulls paired samples apart (per unit of latent distance)
    z = torch.randn(16, model.config.latent_dim, generator=torch.Generator().manual_seed(2))

    def term() -> torch.Tensor:
        x = model.generate(z)
        return mode_seeking_term(x[:8], x[8:], z[:8], z[8:])
    opt = torch.optim.SGD(model.generator.parameters(), lr=1e-3)
    before = float(term())
    for _ in range(5):
        opt.zero_grad()
        term().backward()
        opt.step()
    assert float(term()) < 0.9 * before


def test_conditional_pairs_share_their_label():
    model = build_model("gan", size=32, variant="resnet_r1", base_channels=8, max_channels=8,
                        num_classes=3, mode_seeking=1.0)
    seen = []
    generate = model.generate
    model.generate = lambda z, labels=None: seen.append(labels) or generate(z, labels)
    batch = {"image": torch.rand(9, 1, 32, 32) * 2 - 1, "label": torch.tensor([0, 1, 2, 2, 1, 0, 1, 2, 0])}
    model.loss(batch, "generator")
    labels = seen[0]
    assert torch.equal(labels[:4], labels[4:8]) and torch.equal(labels[:4], batch["label"][:4])
    assert int(labels[8]) == 0  # the odd sample keeps its own label


@pytest.mark.parametrize("bad", [-1.0, float("nan"), 1e9])
def test_bad_weights_are_user_errors(bad):
    with pytest.raises(UserError, match="mode_seeking"):
        _gan(mode_seeking=bad)
