"""Procedural kidney CT phantom: axial abdominal slices and volumes in Hounsfield units.

The default data of every genmed command and test. Each patient has its own body habitus,
spine, liver, great vessels and two kidneys (cortex, medulla pyramids, sinus fat), and, with
probability `lesion_prob`, one renal lesion: a benign cyst (round, homogeneous 0..20 HU, sharp
border, no enhancement) or a malignant mass (lobulated, heterogeneous, enhancing 40..100 HU on
the contrast phase, fuzzy border). Every slice comes in two contrast phases (non-contrast and
contrast-enhanced) of the same anatomy, each noise-free ("clean") and with the scan's noise:
white Gaussian (`noise_model="gaussian"`, the default) or a simulated low-dose scan (`"radon"`:
Poisson counts on the sinogram, filtered back-projection; `genmed.data.lowdose`), with the tissue
label map, kidney and lesion masks and the slice label. Sizes up to 128 px render as they always
have; above, the point spread is sharper and malignant masses get a patchy texture (docs/data.md).

Label rule: a slice is `benign`/`malignant` iff its lesion cross-section covers at least
`min_lesion_px` pixels (then `lesion_mask` is that cross-section), else `healthy` (and
`lesion_mask` is empty). A volume's label is its lesion kind if any slice shows it.

Deterministic: patient i of seed s is the same whatever `n_patients` is. See docs/data.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from genmed.data.limits import MAX_ELEMENTS
from genmed.data.phantom_anatomy import TISSUES, hu_tables, sample_patients
from genmed.data.phantom_render import render
from genmed.errors import UserError

LABELS: tuple[str, ...] = ("healthy", "benign", "malignant")

__all__ = ["LABELS", "TISSUES", "PhantomConfig", "PhantomSlices", "PhantomVolumes", "make_slices",
           "make_volumes"]


@dataclass(frozen=True)
class PhantomConfig:
    """Phantom settings. Difficulty: smaller lesions and more/noisier scans are harder."""

    size: int = 64  # pixels per in-plane side (H = W)
    fov_mm: float = 360.0  # in-plane field of view (mm); spacing = fov_mm / size
    slice_gap_mm: float = 6.0  # z distance between a patient's 2D slices (mm)
    depth: int | None = None  # 3D volumes: slices per volume (None: same as size)
    z_spacing_mm: float = 3.0  # 3D volumes: slice spacing (mm)
    lesion_prob: float = 0.6  # fraction of patients with a renal lesion
    malignant_fraction: float = 0.5  # fraction of lesions that are malignant
    lesion_diameter_mm: tuple[float, float] = (6.0, 36.0)  # lesion diameter range (mm)
    min_lesion_px: int = 2  # fewer visible lesion pixels: slice counts as healthy
    noise_hu: tuple[float, float] = (8.0, 25.0)  # noise SD of ordinary scans (HU)
    noisy_noise_hu: tuple[float, float] = (45.0, 90.0)  # noise SD of low-dose scans (HU)
    noisy_fraction: float = 0.15  # fraction of scans that are low-dose ("noisy")
    psf_mm: float | None = None  # Gaussian point-spread SD (mm); None: psf_sd_mm's default
    mass_edge_mm: float = 2.5  # width of the malignant mass's fuzzy border (mm)
    chunk: int = 256  # slices rendered at once (memory vs speed)
    # scan noise: "gaussian" adds white noise of SD noise_hu / noisy_noise_hu (the default);
    # "radon" simulates a low-dose scan (Poisson counts on the sinogram, FBP; genmed.data.lowdose)
    noise_model: Literal["gaussian", "radon"] = "gaussian"
    dose: tuple[float, float] = (0.25, 1.0)  # radon: dose of ordinary scans (fraction of full)
    noisy_dose: tuple[float, float] = (0.02, 0.10)  # radon: dose of low-dose ("noisy") scans
    views: int = 360  # radon: projection angles over 180 deg
    recon_filter: Literal["ramp", "hann"] = "hann"  # radon: FBP filter
    # malignant texture: "waves" (three ~9 mm plane waves; mostly below the PSF at <= 96 px),
    # "patchy" (a 3D field of 8-20 mm blobs with necrotic patches, resolved at >= 128 px),
    # "auto": patchy when spacing_mm < 2.5 (size >= 145 at 360 mm), else waves
    mass_texture: Literal["auto", "waves", "patchy"] = "auto"
    # psf_mm and mass_texture are per mm: sizes up to 128 px (360 mm) render exactly as before

    def __post_init__(self) -> None:
        if not 16 <= self.size <= 1024:
            raise UserError(f"phantom size={self.size} must be between 16 and 1024 pixels")
        if self.depth is not None and not 4 <= self.depth <= 1024:
            raise UserError(f"phantom depth={self.depth} must be between 4 and 1024 slices")
        # physical ceilings: a body is under 2 m across, a lesion under the field of view, a
        # CT noise SD under the 4,000 HU of the whole scale (so absurd finite values are refused)
        for name, high in (("fov_mm", 2000.0), ("slice_gap_mm", 500.0), ("z_spacing_mm", 100.0)):
            if not 0 < getattr(self, name) <= high:
                raise UserError(f"phantom {name}={getattr(self, name)} must be > 0 and <= {high:g}")
        for name in ("psf_mm", "mass_edge_mm"):  # 0: a sharp image, a sharp mass border
            if getattr(self, name) is not None and not 0 <= getattr(self, name) <= 100.0:
                raise UserError(f"phantom {name}={getattr(self, name)} must be in [0, 100] mm")
        for name in ("lesion_prob", "malignant_fraction", "noisy_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise UserError(f"phantom {name}={getattr(self, name)} must be in [0, 1]")
        for name, ceiling in (("lesion_diameter_mm", self.fov_mm), ("noise_hu", 4000.0),
                              ("noisy_noise_hu", 4000.0)):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi <= ceiling:
                raise UserError(f"phantom {name}={(lo, hi)} must be a range 0 <= low <= high "
                                f"<= {ceiling:g}")
        if self.min_lesion_px < 1 or self.chunk < 1:
            raise UserError("phantom min_lesion_px and chunk must be >= 1")
        for name, options in (("noise_model", ("gaussian", "radon")), ("recon_filter", ("ramp", "hann")),
                              ("mass_texture", ("auto", "waves", "patchy"))):
            if getattr(self, name) not in options:
                raise UserError(f"phantom {name}={getattr(self, name)!r} is not one of {', '.join(options)}")
        for name in ("dose", "noisy_dose"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi <= 100:
                raise UserError(f"phantom {name}={(lo, hi)} must be a range 0 < low <= high <= 100 "
                                "(fractions of full dose)")
        if not 8 <= self.views <= 4096:
            raise UserError(f"phantom views={self.views} must be between 8 and 4096")

    @property
    def spacing_mm(self) -> float:
        """In-plane pixel spacing (mm)."""
        return self.fov_mm / self.size

    @property
    def psf_sd_mm(self) -> float:
        """Point-spread SD (mm): `psf_mm`, or 0.72 pixel clipped to 1..2 mm (2 mm up to 128 px
        over 360 mm, as the phantom always had; 1.01 mm at 256 px, a clinical soft-tissue kernel)."""
        if self.psf_mm is not None:
            return float(self.psf_mm)
        return float(np.clip(0.72 * self.spacing_mm, 1.0, 2.0))

    @property
    def patchy_texture(self) -> bool:
        """Whether malignant masses get the patchy (resolution-independent, mm) texture."""
        return self.mass_texture == "patchy" or (self.mass_texture == "auto" and self.spacing_mm < 2.5)


@dataclass
class PhantomSlices:
    """2D slices, N = patients x slices_per_patient, patient-major. Images (N, H, W)."""

    image: np.ndarray | None  # float32 HU, contrast-enhanced, with scan noise
    clean: np.ndarray | None  # float32 HU, contrast-enhanced, noise-free
    image_nc: np.ndarray | None  # float32 HU, non-contrast, with scan noise
    clean_nc: np.ndarray | None  # float32 HU, non-contrast, noise-free (each None if not kept)
    kidney_mask: np.ndarray  # uint8, kidney outline (incl. sinus) plus lesion
    lesion_mask: np.ndarray  # uint8
    tissue: np.ndarray  # uint8 label map, values of TISSUES
    label: np.ndarray  # (N,) int64 index into LABELS
    noise_hu: np.ndarray  # (N,) float32 noise SD (HU); radon: measured in the body, per slice
    noisy: np.ndarray  # (N,) bool low-dose scan
    patient_id: np.ndarray  # (N,) str
    slice_index: np.ndarray  # (N,) int64, 0 = most caudal
    z_mm: np.ndarray  # (N,) float32 slice height in the patient frame (mm)
    lesion_diameter_mm: np.ndarray  # (N,) in-plane lesion diameter (mm), 0 if healthy
    spacing_mm: tuple[float, float] = (6.0, 5.625)  # (z gap, in-plane) mm
    config: PhantomConfig = field(default_factory=PhantomConfig)
    dose: np.ndarray | None = None  # (N,) float32 fraction of full dose (radon), NaN (gaussian)

    def __len__(self) -> int:
        return len(self.label)


@dataclass
class PhantomVolumes:
    """3D volumes, one per patient. Images (N, D, H, W); slice labels (N, D)."""

    image: np.ndarray
    clean: np.ndarray
    image_nc: np.ndarray
    clean_nc: np.ndarray
    kidney_mask: np.ndarray
    lesion_mask: np.ndarray
    tissue: np.ndarray
    label: np.ndarray  # (N,) int64: lesion kind if visible in any slice
    slice_label: np.ndarray  # (N, D) int64
    noise_hu: np.ndarray
    noisy: np.ndarray
    patient_id: np.ndarray
    lesion_diameter_mm: np.ndarray  # (N,) 3D lesion diameter (mm), 0 if healthy
    spacing_mm: tuple[float, float, float] = (3.0, 5.625, 5.625)  # (z, y, x) mm
    config: PhantomConfig = field(default_factory=PhantomConfig)
    dose: np.ndarray | None = None  # (N,) float32 fraction of full dose (radon), NaN (gaussian)

    def __len__(self) -> int:
        return len(self.label)


IMAGE_FIELDS = ("image", "clean", "image_nc", "clean_nc")  # the float32 HU arrays of a rendering


def _render_stack(n_patients: int, z_rel: np.ndarray, cfg: PhantomConfig, seed: int,
                  keep: tuple[str, ...] = IMAGE_FIELDS) -> dict:
    """Render `len(z_rel)` slices at heights `z_rel` (mm) for every patient; noisy + clean.
    Only the image arrays named in `keep` are allocated (radon noise: all four, dropped at the
    end); the random streams are drawn as for all four, so a kept array never changes."""
    bad = sorted(set(keep) - set(IMAGE_FIELDS))
    if bad:
        raise UserError(f"keep={bad}: choose from {', '.join(IMAGE_FIELDS)}")
    alloc = IMAGE_FIELDS if cfg.noise_model == "radon" else keep
    k, s = len(z_rel), cfg.size
    if n_patients * k * s * s > MAX_ELEMENTS:  # each field below is one (n * k, s, s) array
        raise UserError(f"{n_patients} patient(s) x {k} slice(s) of {s}x{s} pixels is more than "
                        f"{MAX_ELEMENTS} pixels per image array; make fewer or smaller images")
    span = float(z_rel.max() - z_rel.min()) if k > 1 else 0.0
    p, rngs = sample_patients(n_patients, seed, span_mm=span, cfg=cfg)
    p["lut_nc"], p["lut_ce"] = hu_tables(p)
    coord = (np.arange(s, dtype=np.float32) - (s - 1) / 2.0) * cfg.spacing_mm
    n = n_patients * k
    pidx = np.repeat(np.arange(n_patients), k)
    z = np.tile(z_rel.astype(np.float32), n_patients)
    out = {name: np.empty((n, s, s), dt) for name, dt in (
        ("tissue", np.uint8), ("kidney_mask", np.uint8), ("lesion_mask", np.uint8))}
    out.update({name: np.empty((n, s, s), np.float32) for name in alloc})
    visible = np.zeros(n, bool)
    diam = np.zeros(n, np.float32)
    per_chunk = max(1, cfg.chunk // k)  # whole patients per chunk
    for first in range(0, n_patients, per_chunk):
        pats = range(first, min(n_patients, first + per_chunk))
        sl = slice(first * k, pats.stop * k)
        q = {key: v[pidx[sl]] for key, v in p.items()}
        r = render(q, z[sl], coord, coord, cfg)
        out["tissue"][sl], out["kidney_mask"][sl], out["lesion_mask"][sl] = (
            r.tissue, r.kidney_mask, r.lesion_mask)
        for name, clean in (("clean_nc", r.clean_nc), ("clean", r.clean_ce)):
            if name in out:
                out[name][sl] = clean
        visible[sl], diam[sl] = r.visible, r.lesion_diameter_mm
        if cfg.noise_model == "radon":
            _radon_noise(out, sl, r, pats, k, rngs, p, z_rel, cfg, seed)
            continue
        # scan noise: each patient's own stream, independent draws for the two phases
        noise = np.concatenate([rngs[i].standard_normal((2, k, s, s), np.float32) for i in pats], 1)
        noise *= p["noise_hu"][pidx[sl]].astype(np.float32)[None, :, None, None]
        for name, clean, j in (("image", r.clean_ce, 0), ("image_nc", r.clean_nc, 1)):
            if name in out:
                np.add(clean, noise[j], out=out[name][sl])
    if cfg.noise_model == "radon":  # noise SD measured inside the body (contrast phase)
        body = out["tissue"] != TISSUES["air"]
        resid = np.where(body, out["image"] - out["clean"], np.nan).reshape(n, -1)
        out["noise_sd"] = np.sqrt(np.nanmean(resid**2, axis=1)).astype(np.float32)
        for name in set(IMAGE_FIELDS) - set(keep):
            del out[name]
    kind = np.where(p["malignant"], 2, 1)[pidx]
    out["label"] = np.where(visible, kind, 0).astype(np.int64)
    out["lesion_diameter_mm"] = diam
    out["p"], out["pidx"], out["z"] = p, pidx, z
    return out


def _radon_noise(out: dict, sl: slice, r, pats: range, k: int, rngs, p: dict, z_rel: np.ndarray,
                 cfg: PhantomConfig, seed: int) -> None:
    """Low-dose noise for one chunk of whole patients (genmed.data.lowdose).

    Each patient's stream draws its contrast-phase slices, then its non-contrast slices, so a
    patient's noise does not depend on the other patients or on the chunking. With
    $GENMED_CACHE_DIR set, each patient's noisy slices are cached there (see `lowdose.RenderCache`).
    """
    from genmed.data.lowdose import RenderCache, add_lowdose_noise

    cache = RenderCache.from_env(cfg, seed, z_rel)
    todo = []
    for j, i in enumerate(pats):
        own = slice(j * k, (j + 1) * k)
        hit = cache.load(i, r.clean_ce[own], r.clean_nc[own]) if cache else None
        if hit is None:
            todo.append((j, i))
        else:
            out["image"][sl][own], out["image_nc"][sl][own] = hit
    if not todo:
        return
    rows = np.concatenate([np.arange(j * k, (j + 1) * k) for j, _ in todo])
    slice_rngs = [rngs[i] for _, i in todo for _ in range(k)]
    dose = np.repeat(p["dose"][[i for _, i in todo]], k)
    kw = dict(spacing_mm=cfg.spacing_mm, views=cfg.views, filter_name=cfg.recon_filter)
    ce = add_lowdose_noise(r.clean_ce[rows], dose, slice_rngs, **kw)
    nc = add_lowdose_noise(r.clean_nc[rows], dose, slice_rngs, **kw)
    for n, (j, i) in enumerate(todo):
        new, own = slice(n * k, (n + 1) * k), slice(j * k, (j + 1) * k)
        out["image"][sl][own], out["image_nc"][sl][own] = ce[new], nc[new]
        if cache:
            cache.save(i, r.clean_ce[own], r.clean_nc[own], ce[new], nc[new])


def _dose(p: dict, cfg: PhantomConfig) -> np.ndarray:
    """(n_patients,) dose fraction of each scan: radon mode only, NaN for Gaussian noise."""
    if cfg.noise_model == "radon":
        return p["dose"].astype(np.float32)
    return np.full(len(p["dose"]), np.nan, np.float32)


def _patient_ids(n: int, seed: int) -> np.ndarray:
    return np.array([f"s{seed}-p{i:04d}" for i in range(n)])


def make_slices(n_patients: int, slices_per_patient: int = 8, cfg: PhantomConfig = PhantomConfig(),
                seed: int = 0, keep: tuple[str, ...] = IMAGE_FIELDS) -> PhantomSlices:
    """`n_patients` x `slices_per_patient` axial slices (HU), `cfg.slice_gap_mm` apart. Image
    arrays not named in `keep` are None (not rendered into memory: at 256 px each is 256 KiB
    per slice); the kept ones are the same as in a full rendering."""
    if n_patients < 0 or slices_per_patient < 1:
        raise UserError(f"n_patients={n_patients} must be >= 0 and slices_per_patient="
                        f"{slices_per_patient} >= 1")
    k = slices_per_patient
    z_rel = (np.arange(k) - (k - 1) / 2.0) * cfg.slice_gap_mm
    o = _render_stack(n_patients, z_rel, cfg, seed, keep)
    p, pidx = o["p"], o["pidx"]
    return PhantomSlices(
        **{name: o.get(name) for name in IMAGE_FIELDS},
        kidney_mask=o["kidney_mask"], lesion_mask=o["lesion_mask"], tissue=o["tissue"],
        label=o["label"],
        noise_hu=o["noise_sd"] if "noise_sd" in o else p["noise_hu"][pidx].astype(np.float32),
        noisy=p["noisy"][pidx].astype(bool), patient_id=_patient_ids(n_patients, seed)[pidx]
        if n_patients else np.zeros(0, "<U1"),
        slice_index=np.tile(np.arange(k, dtype=np.int64), n_patients), z_mm=o["z"],
        lesion_diameter_mm=o["lesion_diameter_mm"],
        spacing_mm=(float(cfg.slice_gap_mm), float(cfg.spacing_mm)), config=cfg,
        dose=_dose(p, cfg)[pidx])


def make_volumes(n_patients: int, cfg: PhantomConfig = PhantomConfig(), seed: int = 0) -> PhantomVolumes:
    """One (D, H, W) volume (HU) per patient, D = cfg.depth or cfg.size, cfg.z_spacing_mm apart."""
    if n_patients < 0:
        raise UserError(f"n_patients={n_patients} must be >= 0")
    d, s = cfg.depth or cfg.size, cfg.size
    z_rel = (np.arange(d) - (d - 1) / 2.0) * cfg.z_spacing_mm
    o = _render_stack(n_patients, z_rel, cfg, seed)
    p = o["p"]

    def vol(a: np.ndarray) -> np.ndarray:
        return a.reshape(n_patients, d, s, s)

    slice_label = o["label"].reshape(n_patients, d)
    return PhantomVolumes(
        image=vol(o["image"]), clean=vol(o["clean"]), image_nc=vol(o["image_nc"]),
        clean_nc=vol(o["clean_nc"]), kidney_mask=vol(o["kidney_mask"]),
        lesion_mask=vol(o["lesion_mask"]), tissue=vol(o["tissue"]),
        label=slice_label.max(axis=1) if d else np.zeros(n_patients, np.int64),
        slice_label=slice_label, noise_hu=(np.sqrt((o["noise_sd"].reshape(n_patients, d) ** 2).mean(1))
                                           if "noise_sd" in o else p["noise_hu"]).astype(np.float32),
        noisy=p["noisy"].astype(bool), patient_id=_patient_ids(n_patients, seed),
        lesion_diameter_mm=np.where(slice_label.max(axis=1) > 0, p["les_d"], 0.0).astype(np.float32),
        spacing_mm=(float(cfg.z_spacing_mm), float(cfg.spacing_mm), float(cfg.spacing_mm)),
        config=cfg, dose=_dose(p, cfg))
