"""Vectorised rendering of phantom slices: tissue label map, kidney/lesion masks, clean HU.

Every slice of a chunk is drawn at once as (n, H, W) arrays. Axis-aligned ellipses cost two
broadcast adds: ((x - cx)/a)^2 is (n, 1, W) and ((y - cy)/b)^2 is (n, H, 1). Rotated shapes
(kidneys) and lesions are the only full-size trigonometry, and lesion work runs only on the
slices that show a lesion. Units: mm and HU; see `phantom_anatomy` for the frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from genmed.data.phantom_anatomy import TISSUES, kidney_angle

T = TISSUES
_COS25 = float(np.cos(np.deg2rad(25.0)))


@dataclass
class Rendered:
    """One chunk of rendered slices (all (n, H, W) except `lesion_diameter_mm`, `visible`)."""

    tissue: np.ndarray  # uint8 label map (TISSUES)
    kidney_mask: np.ndarray  # uint8
    lesion_mask: np.ndarray  # uint8
    clean_nc: np.ndarray  # float32 HU, non-contrast
    clean_ce: np.ndarray  # float32 HU, contrast-enhanced
    visible: np.ndarray  # (n,) bool: lesion visible in the slice
    lesion_diameter_mm: np.ndarray  # (n,) in-plane lesion diameter, 0 if none


def _col(v: np.ndarray) -> np.ndarray:
    """A per-slice (n,) array (or a scalar) as (n, 1, 1) for broadcasting over images."""
    v = np.asarray(v, np.float32)
    return v[:, None, None] if v.ndim else v


def _ell(x: np.ndarray, y: np.ndarray, cx, cy, a, b) -> np.ndarray:
    """Normalised squared radius of an axis-aligned ellipse, (n, H, W) (<= 1 inside)."""
    return ((x - _col(cx)) / _col(a)) ** 2 + ((y - _col(cy)) / _col(b)) ** 2


def _section(z: np.ndarray, zc: np.ndarray, c) -> np.ndarray:
    """Scale of an ellipsoid's cross-section at height z (0 outside the ellipsoid)."""
    return np.sqrt(np.clip(1.0 - ((z - zc) / c) ** 2, 0.0, 1.0))


def render(p: dict[str, np.ndarray], z: np.ndarray, x: np.ndarray, y: np.ndarray, cfg) -> Rendered:
    """Render slices with per-slice params `p` ((n,) arrays), heights `z` (n,) mm.

    `x` (W,) and `y` (H,) are pixel-centre coordinates in mm. Returns clean images after the
    scanner's point-spread blur (`cfg.psf_sd_mm`), before noise.
    """
    n, H, W = len(z), len(y), len(x)
    xs, ys = x.astype(np.float32), y.astype(np.float32)
    x = x.astype(np.float32)[None, None, :]
    y = y.astype(np.float32)[None, :, None]
    tissue = np.zeros((n, H, W), np.uint8)

    def paint(mask: np.ndarray, name: str) -> None:
        np.copyto(tissue, T[name], where=mask)

    # body wall: fat, muscle ring, viscera
    paint(_ell(x, y, p["body_cx"], p["body_cy"], p["body_a"], p["body_b"]) <= 1, "fat")
    ia, ib = p["body_a"] - p["fat_t"], p["body_b"] - p["fat_t"]
    paint(_ell(x, y, p["body_cx"], p["body_cy"], ia, ib) <= 1, "muscle")
    inner = _ell(x, y, p["body_cx"], p["body_cy"], p["inner_a"], p["inner_b"]) <= 1
    paint(inner, "soft_tissue")
    vr, vcx, vcy = p["vert_r"], p["vert_cx"], p["vert_cy"]
    vb = 0.85 * vr
    for side in (-1.0, 1.0):  # paraspinal muscles
        paint(_ell(x, y, vcx + side * 30.0, vcy + vb + 24.0, 24.0, 19.0) <= 1, "muscle")
    # perirenal fat and kidneys' geometry, each in a box around the kidney
    kid = [_kidney_geometry(p, z, xs, ys, left, cfg.spacing_mm) for left in (False, True)]
    for k in kid:
        _paint_box(tissue, k["box"], k["fat"], T["fat"])
    # liver: ellipsoid in the right upper abdomen, clipped to the peritoneal cavity
    sl = _section(z, p["liver_cz"], p["liver_c"]) + 1e-3
    liver = _ell(x, y, p["body_cx"] - 0.5 * p["inner_a"], p["body_cy"] - 0.15 * p["inner_b"],
                 0.5 * p["inner_a"] * sl, 0.75 * p["inner_b"] * sl) <= 1
    paint(liver & inner, "liver")
    # psoas grows caudally
    ps = p["psoas_r"] * np.clip(1.0 - z / 150.0, 0.5, 1.8)
    for side in (-1.0, 1.0):
        paint(_ell(x, y, vcx + side * (vr + ps + 2.0), vcy - 2.0, 1.2 * ps, ps) <= 1, "muscle")
    # great vessels anterior to the spine
    ar = p["aorta_r"]
    paint(_ell(x, y, vcx + 8.0, vcy - vb - ar - 3.0, ar, ar) <= 1, "vessel")
    paint(_ell(x, y, vcx - 24.0, vcy - vb - ar, 1.4 * ar, 0.9 * ar) <= 1, "vessel")
    # spine: posterior arch, vertebral body (cortical ring + cancellous) or disc, canal
    canal_cy = vcy + vb + 9.0
    paint(_ell(x, y, vcx, canal_cy + 20.0, 5.0, 14.0) <= 1, "bone_cortical")
    paint(_ell(x, y, vcx, canal_cy, 14.0, 14.0) <= 1, "bone_cortical")
    paint(_ell(x, y, vcx, canal_cy, 8.0, 8.0) <= 1, "soft_tissue")
    body_q = _ell(x, y, vcx, vcy, vr, vb)
    disc = (((z / p["vert_period"]) + p["vert_phase"]) % 1.0) < (8.0 / p["vert_period"])
    paint((body_q <= 1) & ~_col(disc).astype(bool), "bone_cortical")
    paint((body_q <= _col(((vr - 3.5) / vr) ** 2)) & ~_col(disc).astype(bool), "bone_cancellous")
    paint((body_q <= 1) & _col(disc).astype(bool), "disc")
    # kidneys: cortex, medulla pyramids, sinus fat at the hilum
    kidney_mask = np.zeros((n, H, W), bool)
    for k in kid:
        _paint_box(tissue, k["box"], k["inside"], T["kidney_cortex"])
        _paint_box(tissue, k["box"], k["medulla"], T["kidney_medulla"])
        _paint_box(tissue, k["box"], k["sinus"], T["fat"])
        _paint_box(kidney_mask, k["box"], k["inside"], True)

    # HU lookup per slice, soft-tissue texture
    lut_nc, lut_ce = p["lut_nc"], p["lut_ce"]  # (n, n_tissues)
    flat = tissue.astype(np.int32) + (np.arange(n, dtype=np.int32) * lut_nc.shape[1])[:, None, None]
    clean_nc = np.take(lut_nc.ravel(), flat)
    clean_ce = np.take(lut_ce.ravel(), flat)
    ph = _col(p["tex_phase"] + z / 12.0)
    tex = 10.0 * (np.cos(x / 7.0 + ph) * np.cos(y / 9.0 - ph)) * (tissue == T["soft_tissue"])
    clean_nc += tex
    clean_ce += tex

    lesion_mask = np.zeros((n, H, W), bool)
    visible = np.zeros(n, bool)
    diam = np.zeros(n, np.float32)
    _paint_lesions(p, z, xs, ys, cfg, tissue, clean_nc, clean_ce, lesion_mask, visible, diam)
    kidney_mask |= lesion_mask

    sigma = cfg.psf_sd_mm / cfg.spacing_mm
    if sigma > 0.05:
        for img in (clean_nc, clean_ce):
            ndimage.gaussian_filter(img, (0.0, sigma, sigma), output=img, truncate=3.0)
    return Rendered(tissue, kidney_mask.astype(np.uint8), lesion_mask.astype(np.uint8),
                    clean_nc, clean_ce, visible, diam)


class _Box:
    """A fixed-size (B x B) window per slice around centres (cx, cy) mm, for local shapes."""

    def __init__(self, cx, cy, half_mm: float, x: np.ndarray, y: np.ndarray, spacing: float,
                 rows: np.ndarray | None = None) -> None:
        size = len(x)
        b = int(min(size, np.ceil(2.0 * half_mm / spacing) + 3))
        c0 = np.clip(np.rint(np.asarray(cx) / spacing + (size - 1) / 2.0) - b // 2, 0, size - b)
        r0 = np.clip(np.rint(np.asarray(cy) / spacing + (size - 1) / 2.0) - b // 2, 0, size - b)
        ar = np.arange(b)
        cols = c0.astype(np.intp)[:, None] + ar
        rws = r0.astype(np.intp)[:, None] + ar
        n = len(cols)
        ni = np.arange(n) if rows is None else rows
        self.index = (ni[:, None, None], rws[:, :, None], cols[:, None, :])
        self.x = x[cols][:, None, :]  # (n, 1, B) mm
        self.y = y[rws][:, :, None]  # (n, B, 1) mm


def _paint_box(target: np.ndarray, box: _Box, mask: np.ndarray, value) -> None:
    """Set `target` to `value` where `mask` (n, B, B) is true inside each slice's box."""
    sub = target[box.index]
    np.copyto(sub, value, where=mask)
    target[box.index] = sub


def _kidney_geometry(p, z, x, y, left: bool, spacing: float) -> dict:
    """Masks (n, B, B) of one kidney in its box: inside, medulla, sinus, perirenal fat."""
    cx = p["kid_cx_l"] if left else p["kid_cx_r"]
    zc = p["kid_z_l"] if left else p["kid_z_r"]
    box = _Box(cx, p["kid_cy"], float(np.max(p["kid_a"], initial=0.0)) + 8.0, x, y, spacing)
    ang = kidney_angle(p, left)
    s = _section(z, zc, p["kid_c"])
    present = _col(s > 0.08).astype(bool)
    a = _col(p["kid_a"] * s + 1e-3)
    b = _col(p["kid_b"] * s + 1e-3)
    ca, sa = _col(np.cos(ang)), _col(np.sin(ang))
    dx, dy = box.x - _col(cx), box.y - _col(p["kid_cy"])
    u = dx * ca + dy * sa
    v = dy * ca - dx * sa
    un, vn = u / a, v / b
    q2 = un * un + vn * vn
    inside = (q2 <= 1.0) & present
    # perirenal fat: the same ellipsoid grown by 6 mm
    sf = _section(z, zc, p["kid_c"] + 6.0)
    fq = (u / _col((p["kid_a"] + 6.0) * sf + 1e-3)) ** 2 + (v / _col((p["kid_b"] + 6.0) * sf + 1e-3)) ** 2
    fat = fq <= 1.0
    # medulla: band 0.45 < q < 0.8 cut into pyramids by cos(6 theta) (Chebyshev T6)
    c2 = un * un / (q2 + 1e-6)
    t6 = ((32.0 * c2 - 48.0) * c2 + 18.0) * c2 - 1.0
    medulla = inside & (q2 > 0.2) & (q2 < 0.64) & (t6 > -0.3)
    # sinus fat at the hilum (anteromedial notch), middle of the kidney only
    mx, my = (-1.0 if left else 1.0), -0.6
    mu, mv = mx * ca + my * sa, my * ca - mx * sa
    dot = u * mu + v * mv
    mid = _col(np.abs(z - zc) < 0.45 * p["kid_c"]).astype(bool)
    cone = dot * dot > (_COS25 * 1.166) ** 2 * (u * u + v * v)
    sinus = inside & mid & ((q2 < 0.05) | (cone & (dot > 0) & (q2 > 0.04)))
    return {"box": box, "inside": inside, "medulla": medulla, "sinus": sinus, "fat": fat}


def _paint_lesions(p, z, x, y, cfg, tissue, clean_nc, clean_ce, lesion_mask, visible, diam) -> None:
    """Blend each slice's lesion (if its cross-section is visible) into the images, in place."""
    rz2 = (p["les_d"] / 2.0) ** 2 - (z - p["les_z"]) ** 2
    idx = np.nonzero(p["has_lesion"] & (rz2 > 0))[0]
    if idx.size == 0:
        return
    q = {k: v[idx] for k, v in p.items() if isinstance(v, np.ndarray) and v.ndim == 1}
    rz = np.sqrt(rz2[idx]).astype(np.float32)
    edge = max(cfg.mass_edge_mm, 1e-3)
    half = float(rz.max()) * 1.45 + 4.0 * edge + cfg.spacing_mm  # lobes <= 42%, tail cut at 4 edges
    box = _Box(q["les_x"], q["les_y"], half, x, y, cfg.spacing_mm, rows=idx)
    dx = box.x - _col(q["les_x"])
    dy = box.y - _col(q["les_y"])
    d = np.sqrt(dx * dx + dy * dy) + 1e-4
    mal = _col(q["malignant"]).astype(bool)
    # malignant outline: r(theta) = r_z (1 + sum_k A_k cos(k theta + phi_k)), lobulated
    w = (dx + 1j * dy) / d
    lob = np.ones_like(d)
    for k, amp, phi in ((2, "lob2", "lobphi2"), (3, "lob3", "lobphi3"), (5, "lob5", "lobphi5")):
        wk = w**k  # cos(k theta + phi) = Re(e^{ik theta}) cos phi - Im(e^{ik theta}) sin phi
        lob += _col(q[amp]) * (wk.real * _col(np.cos(q[phi])) - wk.imag * _col(np.sin(q[phi])))
    r_mal = _col(rz) * lob
    excess = (d - r_mal) / edge
    alpha_mal = np.where(excess > 4.0, 0.0, 1.0 / (1.0 + np.exp(np.clip(excess, -30, 30))))
    alpha = np.where(mal, alpha_mal, (d <= _col(rz)).astype(np.float32)).astype(np.float32)
    mask = alpha >= 0.5
    vis = mask.sum(axis=(1, 2)) >= cfg.min_lesion_px
    alpha *= _col(vis)
    mask &= _col(vis).astype(bool)
    # heterogeneous enhancement + central necrosis in large masses
    necro = (d < 0.45 * r_mal) & _col(q["les_d"] > 25.0).astype(bool)
    if cfg.patchy_texture:
        t = _patchy_field(q, dx, dy, _col(z[idx] - q["les_z"]))
        # enhancing tumour +-20 HU; poorly enhancing (necrotic) patches, about a quarter of the
        # area where the field is lowest, fall to the 40 HU floor of the contrast phase
        poor = 1.0 / (1.0 + np.exp(np.clip((t + 0.7) / 0.12, -30, 30)))
        ce_mal = np.clip(_col(q["mass_ce_hu"]) + 20.0 * t - 25.0 * necro - 60.0 * poor, 40.0, 100.0)
        nc_mal = _col(q["mass_hu"]) + 5.0 * t
    else:  # three ~9 mm plane waves (the original texture)
        ph = _col(q["tex_phase"])
        t = (np.cos(0.7 * dx + 0.2 * dy + ph) + np.cos(-0.3 * dx + 0.65 * dy + 2.0 * ph)
             + np.cos(0.45 * dx - 0.5 * dy + _col(0.4 * (z[idx] - q["les_z"])) + 3.0 * ph)) / 3.0
        ce_mal = np.clip(_col(q["mass_ce_hu"]) + 20.0 * t - 25.0 * necro, 40.0, 100.0)
        nc_mal = _col(q["mass_hu"]) + 5.0 * t
    cyst = _col(q["cyst_hu"])
    for img, les in ((clean_nc, np.where(mal, nc_mal, cyst)), (clean_ce, np.where(mal, ce_mal, cyst))):
        sub = img[box.index]
        img[box.index] = sub + alpha * (les - sub)
    kind = np.where(mal, T["mass"], T["cyst"]).astype(np.uint8)
    _paint_box(tissue, box, mask, kind)
    _paint_box(lesion_mask, box, mask, True)
    visible[idx] = vis
    diam[idx] = np.where(vis, 2.0 * rz, 0.0)


# directions of the patchy texture's plane waves: a Fibonacci sphere, and wavelengths 8..20 mm
_N_WAVES = 8
_GOLDEN = (1.0 + 5.0**0.5) / 2.0
_WAVE_Z = 1.0 - (np.arange(_N_WAVES) + 0.5) / _N_WAVES * 2.0
_WAVE_AZ = 2.0 * np.pi * np.arange(_N_WAVES) / _GOLDEN
_WAVE_K = 2.0 * np.pi / np.geomspace(8.0, 20.0, _N_WAVES)  # rad/mm


def _patchy_field(q: dict, dx: np.ndarray, dy: np.ndarray, dz: np.ndarray) -> np.ndarray:
    """A smooth 3D random-looking field (unit SD) in mm around the lesion centre: 8 plane waves.

    Directions and wavelengths (8..20 mm) are fixed; each patient rotates them about z by its
    `tex_phase` and shifts their phases, so the pattern is the same at every resolution and
    continuous across slices. No random numbers are drawn (the noise streams stay unchanged).
    """
    rot = q["tex_phase"]
    out = np.zeros(np.broadcast_shapes(dx.shape, dy.shape), np.float32)
    for j in range(_N_WAVES):
        rho = np.sqrt(1.0 - _WAVE_Z[j] ** 2)
        az = _WAVE_AZ[j] + rot
        kx, ky, kz = (_WAVE_K[j] * v for v in (rho * np.cos(az), rho * np.sin(az), _WAVE_Z[j]))
        phase = (j + 1) * _GOLDEN * rot + q["lobphi3"] * (j % 3)
        out += np.cos(_col(kx) * dx + _col(ky) * dy + _col(kz) * dz + _col(phase))
    return out * np.float32(np.sqrt(2.0 / _N_WAVES))
