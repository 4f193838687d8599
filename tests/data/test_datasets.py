"""Datasets for models and patient-level splits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genmed.data.datasets import load_training_data
from genmed.data.splits import patient_split
from genmed.errors import UserError


@pytest.mark.parametrize("trial", range(25))
def test_patient_split_never_shares_a_patient(trial):
    rng = np.random.default_rng(trial)
    n_pat = int(rng.integers(3, 40))
    ids = rng.choice([f"p{i}" for i in range(n_pat)], size=int(rng.integers(n_pat, 200)))
    fr = rng.dirichlet(np.ones(3))
    parts = patient_split(ids, {"train": fr[0], "val": fr[1], "test": fr[2]}, seed=trial)
    all_idx = np.concatenate(list(parts.values()))
    assert np.array_equal(np.sort(all_idx), np.arange(len(ids)))  # every item exactly once
    owners = [set(ids[idx]) for idx in parts.values()]
    assert not (owners[0] & owners[1]) and not (owners[0] & owners[2]) and not (owners[1] & owners[2])
    n_unique = len(set(ids))
    for name, f in zip(parts, fr, strict=True):  # largest remainder, +-1 to keep splits non-empty
        assert abs(len(set(ids[parts[name]])) - f * n_unique) < 2.0
    again = patient_split(ids, {"train": fr[0], "val": fr[1], "test": fr[2]}, seed=trial)
    assert all(np.array_equal(parts[k], again[k]) for k in parts)


def test_patient_split_every_split_nonempty_and_bad_fractions():
    parts = patient_split([f"p{i}" for i in range(5)], (0.9, 0.05, 0.05), seed=0)
    assert all(len(v) for v in parts.values())
    with pytest.raises(UserError, match="sum to 1"):
        patient_split(["a", "b"], (0.5, 0.6, 0.1))


def test_phantom_training_data_2d():
    tr = load_training_data(size=32, n_patients=20, seed=0)
    va = load_training_data(size=32, n_patients=20, seed=0, split="val")
    al = load_training_data(size=32, n_patients=20, seed=0, split="all")
    item = tr[0]
    assert item["image"].shape == (1, 32, 32) and item["image"].dtype == torch.float32
    assert item["label"].dtype == torch.long and item["label"].shape == ()
    assert isinstance(item["patient_id"], str)
    assert tr.images.min() >= -1 and tr.images.max() <= 1
    assert not set(tr.patient_ids) & set(va.patient_ids)
    assert len(al) == 160 and len(tr) + len(va) < len(al)
    assert set(torch.unique(al.extras["mask"]).tolist()) <= {0, 1, 2}
    assert al.extras["clean"].shape == al.images.shape
    # noise-free images are smoother than the noisy ones
    assert (al.images - al.extras["clean"]).abs().mean() > 0.01
    batch = torch.utils.data.default_collate([al[i] for i in range(4)])
    assert batch["image"].shape == (4, 1, 32, 32) and len(batch["patient_id"]) == 4


def test_phantom_training_data_3d():
    ds = load_training_data(size=16, spatial_dims=3, split="all", n_patients=2)
    assert ds[0]["image"].shape == (1, 16, 16, 16) and ds.spatial_dims == 3 and len(ds) == 2


@pytest.mark.parametrize("kwargs", [{"spatial_dims": 4}, {"split": "dev"}, {"size": 2},
                                    {"source": "/no/such/file.csv"}])
def test_training_data_bad_arguments(kwargs):
    with pytest.raises(UserError):
        load_training_data(**{"n_patients": 2, **kwargs})
