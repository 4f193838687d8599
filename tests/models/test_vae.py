"""VAE: KL warm-up from batch["step"] or the saved internal counter; ELBO anomaly score."""

from __future__ import annotations

import torch

from genmed.models import build_model


def _vae(**kw):
    return build_model("vae", data_kind="vector", size=4, hidden=16, depth=1, latent_dim=2, **kw)


def test_kl_weight_warms_up_linearly_from_batch_step() -> None:
    model = _vae(beta=2.0, kl_warmup_steps=100)
    x = torch.randn(5, 4)
    betas = [float(model({"image": x, "step": s})["beta"]) for s in (0, 50, 100, 400)]
    assert betas == [0.0, 1.0, 2.0, 2.0]
    assert int(model.step) == 0  # the engine's step was used, the counter untouched


def test_internal_step_counter_counts_and_survives_state_dict() -> None:
    model = _vae(kl_warmup_steps=4)
    x = torch.randn(5, 4)
    seen = [float(model({"image": x})["beta"]) for _ in range(3)]
    assert seen == [0.0, 0.25, 0.5]
    clone = _vae(kl_warmup_steps=4)
    clone.load_state_dict(model.state_dict())
    assert int(clone.step) == 3 and float(clone({"image": x})["beta"]) == 0.75
    model.eval()
    model({"image": x})
    assert int(model.step) == 3  # evaluation does not advance the warm-up


def test_elbo_score_is_higher_off_the_data() -> None:
    from _modelkit import train

    torch.manual_seed(0)
    data = torch.randn(512, 4) * 0.3
    model = train(_vae(kl_warmup_steps=50), data, 300, batch_size=64, lr=3e-3)
    near = torch.randn(64, 4) * 0.3
    far = near + 3.0
    for kind in ("recon", "elbo"):
        s_near = model.anomaly_score(near, kind, generator=torch.Generator().manual_seed(0))
        s_far = model.anomaly_score(far, kind, generator=torch.Generator().manual_seed(0))
        assert s_far.mean() > 2 * s_near.mean()
