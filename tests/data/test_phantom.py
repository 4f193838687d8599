"""The kidney CT phantom: HU per tissue, label rules, determinism, coherence, phases, noise."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from genmed.data.phantom import LABELS, TISSUES, PhantomConfig, make_slices, make_volumes
from genmed.errors import UserError

SHARP = PhantomConfig(size=64, psf_mm=0.0, mass_edge_mm=0.2, lesion_prob=1.0, noisy_fraction=0.3)


@pytest.fixture(scope="module")
def sharp():
    return make_slices(24, 8, SHARP, seed=3)


@pytest.fixture(scope="module")
def default():
    return make_slices(24, 8, PhantomConfig(), seed=1)


def _interior(data, name: str) -> np.ndarray:
    """Pixels of a tissue (SHARP has no point-spread blur), away from a mass's fuzzy border."""
    m = data.tissue == TISSUES[name]
    if name in ("cyst", "mass"):
        return m
    near = ndimage.binary_dilation(data.lesion_mask.astype(bool), np.ones((1, 3, 3)), iterations=3)
    return m & ~near


@pytest.mark.parametrize("name, nc_range, ce_range", [
    ("air", (-1000, -1000), (-1000, -1000)),
    ("fat", (-110, -90), (-110, -90)),
    ("muscle", (45, 55), (55, 65)),
    ("liver", (50, 65), (95, 115)),
    ("bone_cortical", (800, 1000), (800, 1000)),
    ("bone_cancellous", (400, 550), (400, 550)),
    ("kidney_cortex", (25, 35), (150, 200)),
    ("kidney_medulla", (22, 32), (80, 110)),
    ("vessel", (35, 45), (150, 200)),
    ("cyst", (0, 20), (0, 20)),
    ("mass", (20, 50), (40, 100)),
])
def test_tissue_hu_ranges(sharp, name, nc_range, ce_range):
    m = _interior(sharp, name)
    assert m.sum() > 20, name
    for img, (lo, hi) in ((sharp.clean_nc, nc_range), (sharp.clean, ce_range)):
        vals = img[m]
        if name == "mass":  # a few border pixels blend with their surroundings
            vals = np.percentile(vals, [2, 98])
        assert lo - 0.5 <= vals.min() and vals.max() <= hi + 0.5, (name, vals.min(), vals.max())


def test_soft_tissue_textured_but_in_range(sharp):
    vals = sharp.clean_nc[_interior(sharp, "soft_tissue")]
    assert 15 <= vals.min() and vals.max() <= 55 and vals.std() > 2


def test_contrast_phase(sharp):
    t = sharp.tissue
    enh = sharp.clean - sharp.clean_nc
    assert enh[t == TISSUES["kidney_cortex"]].mean() > 100  # kidneys enhance
    assert enh[t == TISSUES["kidney_cortex"]].mean() > enh[t == TISSUES["kidney_medulla"]].mean() + 30
    assert enh[t == TISSUES["mass"]].mean() >= 20  # malignant masses enhance
    assert np.abs(enh[t == TISSUES["cyst"]]).max() < 1e-3  # cysts do not
    assert np.abs(enh[_interior(sharp, "bone_cortical")]).max() < 1e-3
    # the two phases share anatomy: masks are the same arrays for both
    assert sharp.image.shape == sharp.image_nc.shape == sharp.tissue.shape


def test_malignant_heterogeneous_cyst_homogeneous(sharp):
    for pid in np.unique(sharp.patient_id):
        sel = sharp.patient_id == pid
        for kind, name in ((1, "cyst"), (2, "mass")):
            m = (sharp.tissue[sel] == TISSUES[name])
            if m.sum() < 10:
                continue
            spread = sharp.clean[sel][m].std()
            assert (spread < 1e-3) if name == "cyst" else (spread > 3), (pid, name, spread)


def test_mass_border_fuzzy_cyst_border_sharp():
    fuzzy_cfg = PhantomConfig(size=128, psf_mm=0.0, lesion_prob=1.0, lesion_diameter_mm=(25.0, 36.0))
    sharp_cfg = PhantomConfig(size=128, psf_mm=0.0, lesion_prob=1.0, lesion_diameter_mm=(25.0, 36.0),
                              mass_edge_mm=0.05)
    fuzzy, sharp = make_slices(10, 4, fuzzy_cfg, seed=5), make_slices(10, 4, sharp_cfg, seed=5)
    outside = ~(fuzzy.lesion_mask.astype(bool) | sharp.lesion_mask.astype(bool))
    diff = np.abs(fuzzy.clean - sharp.clean) * outside
    per_slice = diff.reshape(len(diff), -1).max(1)
    assert (per_slice[fuzzy.label == 2] > 10).all()  # a mass bleeds into its surroundings
    assert (per_slice[fuzzy.label == 1] == 0).all()  # a cyst does not
    assert (fuzzy.label == 1).any() and (fuzzy.label == 2).any()


def test_label_rules_and_masks(default):
    d = default
    lesion_px = d.lesion_mask.reshape(len(d), -1).sum(1)
    assert np.array_equal(d.label > 0, lesion_px > 0)
    assert (lesion_px[d.label > 0] >= d.config.min_lesion_px).all()
    assert (d.lesion_diameter_mm[d.label == 0] == 0).all() and (d.lesion_diameter_mm[d.label > 0] > 0).all()
    # lesion tissue == lesion mask, of the labelled kind; the kidney mask contains the lesion
    cyst, mass = d.tissue == TISSUES["cyst"], d.tissue == TISSUES["mass"]
    assert np.array_equal(cyst | mass, d.lesion_mask.astype(bool))
    assert not mass[d.label == 1].any() and not cyst[d.label == 2].any()
    assert (d.kidney_mask >= d.lesion_mask).all()
    assert set(np.unique(d.label)) == {0, 1, 2}
    # one lesion kind per patient; lesion slices are contiguous in z
    for pid in np.unique(d.patient_id):
        lab = d.label[d.patient_id == pid]
        assert len(set(lab[lab > 0])) <= 1
        pos = np.nonzero(lab)[0]
        if pos.size:
            assert pos.max() - pos.min() + 1 == pos.size


def test_determinism_and_prefix_stability():
    a = make_slices(3, 4, seed=7)
    b = make_slices(3, 4, seed=7)
    c = make_slices(5, 4, seed=7)
    d = make_slices(3, 4, seed=8)
    for field in ("image", "image_nc", "clean", "tissue", "label", "noise_hu"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
        assert np.array_equal(getattr(a, field), getattr(c, field)[:12])
    assert not np.array_equal(a.clean, d.clean)
    assert list(a.patient_id[:4]) == ["s7-p0000"] * 4 and a.patient_id[4] == "s7-p0001"


def test_patients_coherent_and_varied(default):
    d = default
    body = d.tissue != TISSUES["air"]

    def iou(x, y):
        return (x & y).sum() / (x | y).sum()

    within = [iou(body[i], body[i + 1]) for i in range(0, len(d), 8)]
    across = [iou(body[i], body[i + 8]) for i in range(0, len(d) - 8, 8)]
    assert min(within) > 0.97 and np.mean(across) < 0.93
    # kidney cross-sections change along z within a patient
    area = d.kidney_mask.reshape(24, 8, -1).sum(-1)
    assert (area.std(axis=1) > 0).mean() > 0.8
    # noise is one level per scan (patient)
    assert (d.noise_hu.reshape(24, 8).std(axis=1) == 0).all()
    assert np.array_equal(d.slice_index[:8], np.arange(8))


def test_noise_matches_level_and_flag(default):
    d = default
    resid = (d.image - d.clean).reshape(len(d), -1).std(1)
    assert np.allclose(resid, d.noise_hu, rtol=0.06)
    resid_nc = (d.image_nc - d.clean_nc).reshape(len(d), -1).std(1)
    assert np.allclose(resid_nc, d.noise_hu, rtol=0.06)
    assert not np.allclose(d.image - d.clean, d.image_nc - d.clean_nc)  # independent draws
    cfg = d.config
    assert (d.noise_hu[d.noisy] >= cfg.noisy_noise_hu[0]).all()
    assert (d.noise_hu[~d.noisy] <= cfg.noise_hu[1]).all()
    assert d.image.dtype == np.float32 and d.kidney_mask.dtype == np.uint8


def test_difficulty_knobs():
    none = make_slices(6, 4, PhantomConfig(size=32, lesion_prob=0.0), seed=0)
    assert (none.label == 0).all() and not none.lesion_mask.any()
    mal = make_slices(8, 8, PhantomConfig(size=32, lesion_prob=1.0, malignant_fraction=1.0,
                                          noisy_fraction=1.0), seed=0)
    assert set(np.unique(mal.label)) <= {0, 2} and (mal.label == 2).any() and mal.noisy.all()
    tiny = make_slices(16, 8, PhantomConfig(lesion_prob=1.0, lesion_diameter_mm=(4.0, 6.0)), seed=0)
    big = make_slices(16, 8, PhantomConfig(lesion_prob=1.0, lesion_diameter_mm=(30.0, 36.0)), seed=0)
    assert (tiny.label > 0).sum() < (big.label > 0).sum()
    assert tiny.lesion_diameter_mm.max() <= 6.0


def test_volumes():
    cfg = PhantomConfig(size=32, depth=24, z_spacing_mm=4.0, lesion_prob=1.0,
                        lesion_diameter_mm=(28.0, 36.0))
    v = make_volumes(3, cfg, seed=2)
    assert v.image.shape == (3, 24, 32, 32) and v.slice_label.shape == (3, 24)
    assert np.array_equal(v.label, v.slice_label.max(axis=1)) and (v.label > 0).all()
    assert v.spacing_mm == (4.0, 11.25, 11.25)
    les = v.lesion_mask.reshape(3, 24, -1).sum(-1) > 0
    assert np.array_equal(les, v.slice_label > 0)
    assert (v.lesion_diameter_mm > 0).all()


@pytest.mark.parametrize("kwargs", [{"size": 8}, {"lesion_prob": 1.5}, {"noise_hu": (30.0, 10.0)},
                                    {"fov_mm": 0.0}, {"min_lesion_px": 0},
                                    # absurd finite values: refused before any rendering
                                    {"lesion_diameter_mm": (6.0, 1e308)}, {"fov_mm": 1e9},
                                    {"noise_hu": (8.0, 1e6)}, {"psf_mm": 1e300},
                                    {"mass_edge_mm": -1.0}, {"z_spacing_mm": float("nan")}])
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(UserError):
        PhantomConfig(**kwargs)


def test_labels_constant():
    assert LABELS == ("healthy", "benign", "malignant")
    assert len(set(TISSUES.values())) == len(TISSUES)


def test_point_spread_and_texture_per_mm():
    assert PhantomConfig(size=64).psf_sd_mm == PhantomConfig(size=128).psf_sd_mm == 2.0  # as always
    assert PhantomConfig(size=256).psf_sd_mm == pytest.approx(1.0125) and PhantomConfig(size=512).psf_sd_mm == 1.0
    assert PhantomConfig(size=256, psf_mm=2.0).psf_sd_mm == 2.0
    assert not PhantomConfig(size=128).patchy_texture and PhantomConfig(size=256).patchy_texture
    assert PhantomConfig(size=64, mass_texture="patchy").patchy_texture


def test_clinical_resolution_lesions_span_many_pixels_and_are_heterogeneous():
    cfg = PhantomConfig(size=256, lesion_prob=1.0, malignant_fraction=1.0, lesion_diameter_mm=(10.0, 36.0))
    s = make_slices(6, 2, cfg, seed=4)
    les = s.label > 0
    assert les.sum() >= 4
    area = s.lesion_mask[les].reshape(les.sum(), -1).sum(1) * cfg.spacing_mm**2  # mm^2
    disk = np.pi * s.lesion_diameter_mm[les] ** 2 / 4
    assert np.all((area > 0.6 * disk) & (area < 1.7 * disk))  # lobulated outline, same size in mm
    assert (s.lesion_mask[les].reshape(les.sum(), -1).sum(1) >= 30).all()  # >= 10 mm: many pixels
    spread = [s.clean[i][ndimage.binary_erosion(s.lesion_mask[i].astype(bool), iterations=3)].std()
              for i in np.nonzero(les)[0] if s.lesion_diameter_mm[i] > 20]
    assert spread and np.median(spread) > 8  # heterogeneous enhancement survives the point spread


@pytest.mark.parametrize("noise_model", ["gaussian", "radon"])
def test_make_slices_keeps_only_the_arrays_asked_for(noise_model):
    """`keep` drops arrays without changing the kept ones (the random streams are the same)."""
    from genmed.data.phantom import make_slices

    cfg = PhantomConfig(size=32, noise_model=noise_model)
    full = make_slices(3, 4, cfg, seed=1)
    lean = make_slices(3, 4, cfg, seed=1, keep=("image_nc",))
    assert lean.image is None and lean.clean is None and lean.clean_nc is None
    np.testing.assert_array_equal(lean.image_nc, full.image_nc)
    np.testing.assert_array_equal(lean.noise_hu, full.noise_hu)
    with pytest.raises(UserError, match="keep"):
        make_slices(1, 1, cfg, keep=("sinogram",))
