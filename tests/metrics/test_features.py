"""Feature extractors: shipped phantom CNN, TorchScript file, callable; hashes recorded."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genmed.errors import UserError
from genmed.metrics import PHANTOM_EXTRACTOR, evaluate_images, load_extractor
from genmed.metrics.extractor_train import ExtractorConfig, ExtractorData, train_extractor
from genmed.metrics.features import ASSET_PATH, PhantomCNN, save_phantom_cnn, state_hash


def test_shipped_extractor_is_small_and_hashed(ellipses):
    assert ASSET_PATH.stat().st_size < 2_000_000
    ext = load_extractor()
    assert ext.name == PHANTOM_EXTRACTOR and len(ext.weights_hash) == 64
    x, _ = ellipses(5, seed=0)
    f = ext.features(x)
    assert f.shape == (5, 224) and np.isfinite(f).all()
    assert set(ext.predict(x)) <= {0, 1, 2}
    # Resolution-agnostic: a 48 px input is resized to the CNN's 64 px.
    assert ext.features(ellipses(3, size=48, seed=1)[0]).shape == (3, 224)


def test_metric_output_records_extractor(ellipses):
    real, _ = ellipses(24, seed=0)
    fake, _ = ellipses(24, seed=1)
    out = evaluate_images(real, fake, cfg=_small())
    assert out["extractor"]["name"] == PHANTOM_EXTRACTOR
    assert out["extractor"]["weights_hash"] == load_extractor().weights_hash
    assert {"fid", "kid", "precision", "density"} <= set(out["quality"])
    assert {"recall", "coverage", "intra_ms_ssim_fake", "class_coverage"} <= set(out["diversity"])


def test_user_torchscript_extractor(tmp_path, ellipses):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten())
    path = tmp_path / "mine.pt"
    torch.jit.script(net).save(str(path))
    ext = load_extractor(str(path))
    x, _ = ellipses(6, seed=0)
    np.testing.assert_allclose(ext.features(x), net(torch.from_numpy(x)).detach().double().numpy(), rtol=1e-5)
    assert ext.name == "torchscript:mine.pt" and ext.weights_hash == state_hash(net.state_dict())
    out = evaluate_images(x, ellipses(6, seed=1)[0], extractor=str(path), cfg=_small())
    assert out["extractor"]["name"] == "torchscript:mine.pt" and "class_coverage" not in out["diversity"]


def test_python_callable_extractor(ellipses):
    def mean_std(x: torch.Tensor) -> torch.Tensor:
        return torch.stack([x.mean(dim=(1, 2, 3)), x.std(dim=(1, 2, 3))], 1)

    ext = load_extractor(mean_std)
    assert ext.name.endswith("mean_std") and ext.weights_hash.startswith("source:")
    assert ext.features(ellipses(4)[0]).shape == (4, 2)


def test_training_is_reproducible_and_round_trips(tmp_path, ellipses):
    x, y = ellipses(24, size=32, seed=0)
    data = ExtractorData(x, y, np.stack([x.mean((1, 2, 3)), x.std((1, 2, 3))], 1))
    cfg = ExtractorConfig(epochs=1, batch_size=12, width=4, seed=3)
    a, b = train_extractor(data, cfg), train_extractor(data, cfg)
    assert state_hash(a.state_dict()) == state_hash(b.state_dict())
    digest = save_phantom_cnn(a, tmp_path / "e.safetensors", {"width": 4, "n_aux": 2})
    ext = load_extractor(tmp_path / "e.safetensors")
    assert ext.weights_hash == digest
    np.testing.assert_allclose(ext.features(x[:3]), a.features(torch.from_numpy(x[:3])).detach().numpy(), rtol=1e-5)


def test_bad_input(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(UserError, match="not a TorchScript file"):
        load_extractor(str(junk))
    with pytest.raises(UserError, match="not found"):
        load_extractor(str(tmp_path / "missing.pt"))
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 16)
    with pytest.raises(UserError, match="not a safetensors file"):
        load_extractor(bad)
    wrong = tmp_path / "wrong.safetensors"
    save_phantom_cnn(PhantomCNN(width=8), wrong, {"width": 4})
    with pytest.raises(UserError, match="do not match"):
        load_extractor(wrong)
    with pytest.raises(UserError, match=r"\(B, F\)"):
        load_extractor(lambda x: x).features(np.zeros((2, 1, 8, 8)))
    with pytest.raises(UserError, match="labels must be"):
        train_extractor(ExtractorData(np.zeros((4, 1, 8, 8)), np.array([0, 1, 2, 5]), np.zeros((4, 1))))


def _small():
    from genmed.metrics import EvalConfig

    return EvalConfig(n_boot=5, kid_subset=5, kid_subsets=5, k=2, ms_ssim_pairs=10)
