"""Per-patient anatomy and tissue HU values of the kidney CT phantom.

Each patient is a small set of scalars (mm, HU) drawn from its own random stream
(`numpy.random.SeedSequence(seed).spawn`), so patient `i` is the same whatever the number of
patients asked for. Geometry is in a patient frame: x (mm) grows toward the patient's LEFT
(image columns, radiological display), y (mm) grows toward POSTERIOR (image rows), z (mm) grows
toward SUPERIOR; z = 0 is the centre of the slice stack.

HU values follow typical adult abdominal CT (non-contrast "nc" and portal-venous /
nephrographic contrast-enhanced "ce" phases): fat -110..-90, muscle 45..55, liver 50..65 (ce
95..115), kidney 25..35 (ce cortex 150..200, medulla 80..110), cancellous bone 400..550,
cortical bone 800..1000; benign cyst 0..20 HU in both phases (no enhancement), malignant mass
25..45 HU nc and 55..85 HU ce (+/- texture, enhancement >= 20 HU, the usual threshold; Israel &
Bosniak, AJR 2005).
"""

from __future__ import annotations

import numpy as np

# Tissue label map values (uint8). Order matters: later tissues are painted over earlier ones.
TISSUES: dict[str, int] = {
    "air": 0,
    "fat": 1,
    "soft_tissue": 2,  # bowel / viscera / spinal canal
    "muscle": 3,
    "liver": 4,
    "bone_cortical": 5,
    "bone_cancellous": 6,
    "disc": 7,  # intervertebral disc
    "vessel": 8,  # aorta, inferior vena cava
    "kidney_cortex": 9,
    "kidney_medulla": 10,
    "cyst": 11,  # benign lesion
    "mass": 12,  # malignant lesion
}

# (name, low, high) of uniform draws; one row per scalar. Units: mm unless named *_hu.
_PARAMS: tuple[tuple[str, float, float], ...] = (
    ("body_a", 130.0, 172.0),  # body half-width (left-right)
    ("body_b", 92.0, 128.0),  # body half-depth (antero-posterior)
    ("body_cx", -6.0, 6.0),
    ("body_cy", -6.0, 8.0),
    ("fat_t", 8.0, 34.0),  # subcutaneous fat thickness
    ("wall_t", 6.0, 12.0),  # abdominal wall muscle thickness
    ("vert_r", 17.0, 23.0),  # vertebral body radius
    ("vert_period", 30.0, 36.0),  # vertebra + disc height along z
    ("vert_phase", 0.0, 1.0),
    ("kid_dx", 52.0, 72.0),  # kidney centre distance from midline
    ("kid_dy", -6.0, 10.0),  # kidney centre relative to vertebral body
    ("kid_a", 24.0, 31.0),  # kidney in-plane long half-axis
    ("kid_b", 16.0, 22.0),  # kidney in-plane short half-axis
    ("kid_c", 48.0, 62.0),  # kidney half-length (cranio-caudal)
    ("kid_angle", 0.35, 0.75),  # in-plane tilt (rad)
    ("kid_zl", -14.0, 14.0),  # left kidney centre z
    ("kid_zdrop", 5.0, 20.0),  # right kidney lies lower
    ("liver_z", 45.0, 75.0),  # liver centre above the right kidney
    ("liver_c", 80.0, 110.0),  # liver half-length
    ("psoas_r", 9.0, 14.0),
    ("aorta_r", 9.0, 12.0),
    ("tex_phase", 0.0, 6.283),
    ("fat_hu", -110.0, -90.0),
    ("soft_hu", 30.0, 40.0),
    ("soft_ce_hu", 60.0, 80.0),
    ("muscle_hu", 45.0, 55.0),
    ("liver_hu", 50.0, 65.0),
    ("liver_ce_hu", 95.0, 115.0),
    ("cortical_hu", 800.0, 1000.0),
    ("cancellous_hu", 400.0, 550.0),
    ("vessel_hu", 35.0, 45.0),
    ("vessel_ce_hu", 150.0, 200.0),
    ("kidney_hu", 25.0, 35.0),
    ("cortex_ce_hu", 150.0, 200.0),
    ("medulla_ce_hu", 80.0, 110.0),
    ("cyst_hu", 0.0, 20.0),
    ("mass_hu", 25.0, 45.0),
    ("mass_ce_hu", 55.0, 85.0),
    # lesion geometry, used only when the patient has a lesion
    ("les_u", 0.0, 1.0),  # -> diameter within cfg range
    ("les_rho", 0.15, 0.9),  # normalised in-plane position inside the kidney
    ("les_phi", 0.0, 6.283),
    ("les_zu", 0.0, 1.0),  # -> z within the stack
    ("lob2", 0.04, 0.16),  # lobulation amplitudes of the malignant outline
    ("lob3", 0.04, 0.16),
    ("lob5", 0.02, 0.10),
    ("lobphi2", 0.0, 6.283),
    ("lobphi3", 0.0, 6.283),
    ("lobphi5", 0.0, 6.283),
    ("les_side", 0.0, 1.0),
    ("u_lesion", 0.0, 1.0),  # < lesion_prob: has a lesion
    ("u_kind", 0.0, 1.0),  # < malignant_fraction: malignant
    ("u_noisy", 0.0, 1.0),  # < noisy_fraction: high-noise scan
    ("u_noise", 0.0, 1.0),  # position inside the noise range
)
PARAM_NAMES = tuple(p[0] for p in _PARAMS)
_LO = np.array([p[1] for p in _PARAMS])
_HI = np.array([p[2] for p in _PARAMS])


def sample_patients(
    n_patients: int, seed: int, *, span_mm: float, cfg
) -> tuple[dict[str, np.ndarray], list[np.random.Generator]]:
    """Draw anatomy for `n_patients` patients; return (params (n,) arrays, one rng per patient).

    `span_mm` is the z extent of the slice stack the lesion should fall into. `cfg` is a
    `PhantomConfig`. The returned generators continue each patient's stream (for noise).
    """
    children = np.random.SeedSequence(seed).spawn(n_patients)
    rngs = [np.random.Generator(np.random.Philox(c)) for c in children]  # fast normals
    u = np.stack([r.random(len(_PARAMS)) for r in rngs]) if n_patients else np.zeros((0, len(_PARAMS)))
    raw = _LO + (_HI - _LO) * u
    p = {name: raw[:, i] for i, name in enumerate(PARAM_NAMES)}
    _derive(p, span_mm=span_mm, cfg=cfg)
    return p, rngs


def _derive(p: dict[str, np.ndarray], *, span_mm: float, cfg) -> None:
    """Add positions that depend on other draws (in place)."""
    inner_a = p["body_a"] - p["fat_t"] - p["wall_t"]
    inner_b = p["body_b"] - p["fat_t"] - p["wall_t"]
    p["inner_a"], p["inner_b"] = inner_a, inner_b
    # vertebral body sits against the posterior wall
    p["vert_cx"] = p["body_cx"]
    p["vert_cy"] = p["body_cy"] + inner_b - 2.2 * p["vert_r"] - 12.0
    # kidneys (index 0: patient right = image left = negative x; index 1: patient left)
    p["kid_cy"] = p["vert_cy"] + p["kid_dy"]
    p["kid_cx_r"] = p["vert_cx"] - p["kid_dx"]
    p["kid_cx_l"] = p["vert_cx"] + p["kid_dx"]
    p["kid_z_l"] = p["kid_zl"]
    p["kid_z_r"] = p["kid_zl"] - p["kid_zdrop"]
    p["liver_cz"] = p["kid_z_r"] + p["liver_z"]
    # lesion: presence, kind, size, side and 3D centre
    lo, hi = cfg.lesion_diameter_mm
    p["has_lesion"] = p["u_lesion"] < cfg.lesion_prob
    p["malignant"] = p["has_lesion"] & (p["u_kind"] < cfg.malignant_fraction)
    p["les_d"] = np.where(p["has_lesion"], lo + (hi - lo) * p["les_u"], 0.0)
    left = p["les_side"] < 0.5
    p["les_left"] = left
    kz = np.where(left, p["kid_z_l"], p["kid_z_r"])
    # lesion centre z inside the stack and inside the middle 80% of the kidney
    zlo = np.maximum(-span_mm / 2, kz - 0.8 * p["kid_c"])
    zhi = np.maximum(zlo, np.minimum(span_mm / 2, kz + 0.8 * p["kid_c"]))
    p["les_z"] = zlo + (zhi - zlo) * p["les_zu"]
    s = np.sqrt(np.clip(1.0 - ((p["les_z"] - kz) / p["kid_c"]) ** 2, 0.05, 1.0))
    lu = p["les_rho"] * p["kid_a"] * s * np.cos(p["les_phi"])
    lv = p["les_rho"] * p["kid_b"] * s * np.sin(p["les_phi"])
    ang = kidney_angle(p, left)
    p["les_x"] = np.where(left, p["kid_cx_l"], p["kid_cx_r"]) + lu * np.cos(ang) - lv * np.sin(ang)
    p["les_y"] = p["kid_cy"] + lu * np.sin(ang) + lv * np.cos(ang)
    # scan noise (dose): a noisy scan draws from the high-noise range
    noisy = p["u_noisy"] < cfg.noisy_fraction
    nlo = np.where(noisy, cfg.noisy_noise_hu[0], cfg.noise_hu[0])
    nhi = np.where(noisy, cfg.noisy_noise_hu[1], cfg.noise_hu[1])
    p["noisy"] = noisy
    p["noise_hu"] = nlo + (nhi - nlo) * p["u_noise"]
    # radon noise model: the same draws pick a dose (fraction of full) instead; higher u, less dose
    dlo = np.where(noisy, cfg.noisy_dose[0], cfg.dose[0])
    dhi = np.where(noisy, cfg.noisy_dose[1], cfg.dose[1])
    p["dose"] = dhi - (dhi - dlo) * p["u_noise"]


def kidney_angle(p: dict[str, np.ndarray], left: bool | np.ndarray) -> np.ndarray:
    """In-plane tilt (rad) of a kidney's long axis: the lateral pole points anteriorly."""
    return np.where(left, -p["kid_angle"], p["kid_angle"])


def hu_tables(p: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-patient lookup tables (n, n_tissues) of HU: (non-contrast, contrast-enhanced)."""
    n = len(p["body_a"])
    nc = np.zeros((n, len(TISSUES)), np.float32)
    ce = np.zeros_like(nc)
    rows = {
        "air": (-1000.0, -1000.0),
        "fat": (p["fat_hu"], p["fat_hu"]),
        "soft_tissue": (p["soft_hu"], p["soft_ce_hu"]),
        "muscle": (p["muscle_hu"], p["muscle_hu"] + 10.0),
        "liver": (p["liver_hu"], p["liver_ce_hu"]),
        "bone_cortical": (p["cortical_hu"], p["cortical_hu"]),
        "bone_cancellous": (p["cancellous_hu"], p["cancellous_hu"]),
        "disc": (75.0, 85.0),
        "vessel": (p["vessel_hu"], p["vessel_ce_hu"]),
        "kidney_cortex": (p["kidney_hu"], p["cortex_ce_hu"]),
        "kidney_medulla": (p["kidney_hu"] - 3.0, p["medulla_ce_hu"]),
        "cyst": (p["cyst_hu"], p["cyst_hu"]),
        "mass": (p["mass_hu"], p["mass_ce_hu"]),
    }
    for name, (v_nc, v_ce) in rows.items():
        nc[:, TISSUES[name]] = v_nc
        ce[:, TISSUES[name]] = v_ce
    return nc, ce
