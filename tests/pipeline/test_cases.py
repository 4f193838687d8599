"""Pipeline data: a user's manifest (NIfTI + masks) reads back as the phantom it was written from."""

from __future__ import annotations

import numpy as np
import pytest

from genmed.data import PhantomConfig, write_phantom_dataset
from genmed.errors import UserError
from genmed.pipeline.cases import load_cases, phantom_cases, split_cases


def test_manifest_matches_phantom_and_splits_by_patient(tmp_path):
    cfg = PhantomConfig(size=32)
    res = write_phantom_dataset(tmp_path / "ds", n_patients=6, slices_per_patient=3, cfg=cfg, seed=3)
    cases = load_cases(res.manifest, size=32, n_patients=0, slices_per_patient=0, phantom=cfg, seed=0)
    ref = phantom_cases(6, 3, cfg, seed=3)
    assert len(cases) == len(ref) == 18
    np.testing.assert_array_equal(cases.label, ref.label)
    np.testing.assert_array_equal(cases.kidney, ref.kidney)
    np.testing.assert_allclose(cases.image, ref.image, atol=1e-4)
    splits = split_cases(cases, (0.5, 0.1, 0.2, 0.2), seed=0)
    seen = [set(cases.patient_id[idx]) for idx in splits.values()]
    assert sum(len(s) for s in seen) == len(set().union(*seen))  # no patient in two splits
    assert len(splits["dev"]) > 0 and len(splits["train"]) > 0


def test_manifest_without_masks_is_a_user_error(tmp_path):
    bad = tmp_path / "m.csv"
    bad.write_text("path,label,patient_id\nimg.nii.gz,healthy,p1\n")
    with pytest.raises(UserError, match="mask_path"):
        load_cases(bad, size=32, n_patients=0, slices_per_patient=0, phantom=PhantomConfig(), seed=0)


def test_phantom_cases_render_one_phase_in_place():
    """The pipeline's cases are the full rendering's contrast phase, windowed, and cost about
    two image arrays at peak (the old path rendered all four phases and copied twice: 6.8x)."""
    import tracemalloc

    from genmed.data.phantom import make_slices
    from genmed.data.transforms import hu_to_unit

    cfg = PhantomConfig(size=64, chunk=32)
    tracemalloc.start()
    cases = phantom_cases(64, 8, cfg, seed=3)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 3.5 * cases.image.nbytes
    full = make_slices(64, 8, cfg, seed=3)
    np.testing.assert_array_equal(cases.image, hu_to_unit(full.image).astype(np.float32))
    np.testing.assert_array_equal(cases.kidney, full.kidney_mask)
