"""Physically based low-dose CT noise: forward projection, Poisson counts, filtered back-projection.

The clean HU slice becomes linear attenuation mu = mu_water (1 + HU/1000) (mu_water = 0.019/mm,
about 70 keV), is forward-projected along parallel rays (line integrals p in mm, `views` angles
over 180 deg, one detector bin per pixel), the detector counts are drawn as
Poisson(I0 exp(-p)), p_noisy = -log(max(counts, 1) / I0), and the sinogram noise
p_noisy - p is reconstructed by filtered back-projection (ramp or Hann-apodised ramp) and added
to the clean slice in HU. Because FBP is linear, clean + FBP(p_noisy - p) = FBP(p_noisy) -
FBP(p) + clean: the slice carries exactly the noise of a low-dose reconstruction (streaky,
spatially correlated, stronger behind bone and through the long axis of the body, photon
starvation included) while `clean` stays the exact noise-free target, not blurred by the
reconstruction. This is how the Mayo/AAPM low-dose CT challenge simulated reduced dose.

Dose: I0 photons per ray at 100% dose is `I0_FULL` for a 1.40625 mm detector bin (256 px over
360 mm) and 360 views, calibrated so that 100% dose gives about 10 HU noise SD in the liver of
the 256-px phantom (a routine portal-venous abdomen). Other sizes and view counts keep the total
photons (the dose) fixed: I0 per ray scales with the bin width and with 360 / views.

Caching: with the environment variable GENMED_CACHE_DIR set to a folder, the sparse matrices
(about 620 MB for 256 px and 360 views; 10 s to build) and each phantom patient's low-dose slices
(`RenderCache`, keyed by seed, patient, slice heights, phantom config and `CACHE_VERSION`) are
kept there, so repeated runs (benchmarks) do not render again. Without it nothing is written.

The operators are skimage's `radon(circle=True)` (bilinear rotation, column sums) and
`iradon(circle=True, interpolation="linear")` written as scipy sparse matrices, built once per
(size, views) and kept in memory (`projector`); `radon_skimage` / `fbp_skimage` are the
reference implementations the tests compare them with.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import sparse

from genmed.errors import UserError

MU_WATER_PER_MM = 0.019  # linear attenuation of water at ~70 keV (1/mm)
I0_FULL = 4.0e5  # photons per ray at 100% dose, 1.40625 mm bin, 360 views (10 HU liver SD, 256 px)
REF_BIN_MM = 360.0 / 256  # detector bin of the calibration geometry (mm)
REF_VIEWS = 360
FILTERS = ("ramp", "hann")
CACHE_ENV = "GENMED_CACHE_DIR"
CACHE_VERSION = 1  # bump when the simulation changes: old cache entries are then ignored

__all__ = ["CACHE_ENV", "FILTERS", "I0_FULL", "MU_WATER_PER_MM", "Projector", "RenderCache",
           "add_lowdose_noise", "cache_dir", "fbp_skimage", "hu_to_mu", "i0_per_ray", "mu_to_hu",
           "projector", "radon_skimage"]


def cache_dir() -> Path | None:
    """The folder named by $GENMED_CACHE_DIR, or None (no caching)."""
    value = os.environ.get(CACHE_ENV, "").strip()
    return Path(value).expanduser() if value else None


def hu_to_mu(hu: np.ndarray) -> np.ndarray:
    """HU -> linear attenuation (1/mm), air (and anything below -1000 HU) clipped to 0."""
    return np.maximum(MU_WATER_PER_MM * (1.0 + np.asarray(hu, np.float32) / 1000.0), 0.0)


def mu_to_hu(mu: np.ndarray) -> np.ndarray:
    """Linear attenuation (1/mm) -> HU."""
    return (np.asarray(mu) / MU_WATER_PER_MM - 1.0) * 1000.0


def i0_per_ray(dose: float | np.ndarray, spacing_mm: float, views: int, i0_full: float = I0_FULL):
    """Incident photons per ray for `dose` (fraction of full dose) at this bin width and view count."""
    return np.asarray(dose, np.float64) * i0_full * (spacing_mm / REF_BIN_MM) * (REF_VIEWS / views)


def _angles(views: int) -> np.ndarray:
    return np.linspace(0.0, 180.0, views, endpoint=False)


def _circle(size: int) -> np.ndarray:
    """skimage's reconstruction circle: (r - size//2)^2 + (c - size//2)^2 <= (size//2)^2."""
    r = np.arange(size) - size // 2
    return (r[:, None] ** 2 + r[None, :] ** 2) <= (size // 2) ** 2


def _fourier_filter(n: int, name: str) -> np.ndarray:
    """skimage's `_get_fourier_filter` (ramp from its spatial form, optional Hann window), rfft half."""
    k = np.concatenate((np.arange(1, n / 2 + 1, 2, dtype=int), np.arange(n / 2 - 1, 0, -2, dtype=int)))
    f = np.zeros(n)
    f[0] = 0.25
    f[1::2] = -1 / (np.pi * k) ** 2
    filt = 2 * np.real(np.fft.fft(f))
    if name == "hann":
        filt *= np.fft.fftshift(np.hanning(n))
    # skimage keeps the real part of ifft(fft(p) * filt); for real p that equals filtering with
    # the symmetric part of filt (its Hann window is off by half a bin), which rfft can use
    filt = 0.5 * (filt + np.roll(filt[::-1], 1))
    return filt[: n // 2 + 1]


@dataclass
class Projector:
    """Parallel-beam forward projection and FBP of (n, size, size) images as sparse matrices.

    Sinograms are (n, views, size) in skimage's units (sum of pixel values along a ray, so
    multiply by the pixel spacing for mm). Pixels outside the inscribed circle are ignored
    (skimage's `circle=True`): images must be zero there.
    """

    size: int
    views: int
    forward_matrix: sparse.csr_matrix  # (views * size, inside pixels)
    back_matrix: sparse.csr_matrix  # (inside pixels, views * diag)
    inside: np.ndarray  # (size, size) bool, the reconstruction circle
    diag: int  # detector bins after skimage pads the circle sinogram to the square's diagonal
    pad_before: int
    n_fft: int

    def forward(self, images: np.ndarray) -> np.ndarray:
        """(n, size, size) -> sinograms (n, views, size), float32."""
        x = np.asarray(images, np.float32).reshape(len(images), -1)[:, self.inside.ravel()]
        out = (self.forward_matrix @ np.ascontiguousarray(x.T)).T
        return np.ascontiguousarray(out, np.float32).reshape(len(images), self.views, self.size)

    def filtered(self, sinograms: np.ndarray, filter_name: str = "hann") -> np.ndarray:
        """Ramp-filter each projection as skimage's iradon does: (n, views, size) -> (n, views, diag)."""
        n = len(sinograms)
        pad = np.zeros((n, self.views, self.n_fft), np.float32)
        pad[:, :, self.pad_before:self.pad_before + self.size] = sinograms
        spec = np.fft.rfft(pad, axis=-1)
        spec *= _fourier_filter(self.n_fft, filter_name).astype(np.float32)
        return np.fft.irfft(spec, n=self.n_fft, axis=-1)[:, :, : self.diag].astype(np.float32)

    def fbp(self, sinograms: np.ndarray, filter_name: str = "hann") -> np.ndarray:
        """Filtered back-projection (n, views, size) -> (n, size, size), zero outside the circle."""
        if filter_name not in FILTERS:
            raise UserError(f"reconstruction filter {filter_name!r} is not one of {', '.join(FILTERS)}")
        n = len(sinograms)
        filt = self.filtered(sinograms, filter_name).reshape(n, -1)
        vals = (self.back_matrix @ np.ascontiguousarray(filt.T)).T * (np.pi / (2 * self.views))
        out = np.zeros((n, self.size * self.size), np.float32)
        out[:, self.inside.ravel()] = vals
        return out.reshape(n, self.size, self.size)


_LOCK = threading.Lock()


def projector(size: int, views: int) -> Projector:
    """The (cached) projector of `size` x `size` images over `views` angles in [0, 180) deg."""
    if not 8 <= size <= 1024 or not 1 <= views <= 4096:
        raise UserError(f"projector size={size} must be in 8..1024 and views={views} in 1..4096")
    with _LOCK:
        return _cached(int(size), int(views))


@lru_cache(maxsize=2)
def _cached(size: int, views: int) -> Projector:
    folder = cache_dir()
    path = folder / f"projector-{size}-{views}-v{CACHE_VERSION}.npz" if folder else None
    if path is not None and path.is_file():
        try:
            with np.load(path) as z:
                fwd = sparse.csr_matrix((z["f_data"], z["f_indices"], z["f_indptr"]), shape=tuple(z["f_shape"]))
                back = sparse.csr_matrix((z["b_data"], z["b_indices"], z["b_indptr"]), shape=tuple(z["b_shape"]))
                meta = z["meta"]
            return Projector(size, views, fwd, back, _circle(size), *(int(v) for v in meta))
        except (OSError, KeyError, ValueError):
            pass  # unreadable cache entry: rebuild and overwrite it
    proj = _build(size, views)
    if path is not None:
        from genmed.fileio import atomic_path

        f, b = proj.forward_matrix, proj.back_matrix
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, f_data=f.data, f_indices=f.indices, f_indptr=f.indptr, f_shape=f.shape,
                     b_data=b.data, b_indices=b.indices, b_indptr=b.indptr, b_shape=b.shape,
                     meta=np.array([proj.diag, proj.pad_before, proj.n_fft]))
    return proj


def _build(size: int, views: int) -> Projector:
    inside = _circle(size)
    col_of = np.full(size * size, -1, np.int64)
    n_in = int(inside.sum())
    col_of[inside.ravel()] = np.arange(n_in)
    theta = np.deg2rad(_angles(views))
    rows_out, cols_out = np.mgrid[:size, :size]
    rr, cc = rows_out.ravel().astype(np.float64), cols_out.ravel().astype(np.float64)
    centre = size // 2
    blocks = []
    for i, a in enumerate(theta):
        # skimage radon: warp(image, R) samples the input at R @ (col, row, 1) bilinearly
        ca, sa = np.cos(a), np.sin(a)
        x = ca * cc + sa * rr - centre * (ca + sa - 1)
        y = -sa * cc + ca * rr - centre * (ca - sa - 1)
        x0, y0 = np.floor(x), np.floor(y)
        dx, dy = x - x0, y - y0
        det = cols_out.ravel()  # detector bin = output column (summed over output rows)
        rws, cls, vals = [], [], []
        for oy, ox, w in ((0, 0, (1 - dy) * (1 - dx)), (0, 1, (1 - dy) * dx), (1, 0, dy * (1 - dx)),
                          (1, 1, dy * dx)):
            yi, xi = y0.astype(np.int64) + oy, x0.astype(np.int64) + ox
            ok = (yi >= 0) & (yi < size) & (xi >= 0) & (xi < size) & (w > 0)
            src = col_of[yi[ok] * size + xi[ok]]
            keep = src >= 0
            rws.append(det[ok][keep])
            cls.append(src[keep])
            vals.append(w[ok][keep])
        blocks.append(sparse.csr_matrix(
            (np.concatenate(vals).astype(np.float32), (np.concatenate(rws), np.concatenate(cls))),
            shape=(size, n_in)))  # duplicates (same bin, same pixel) are summed
    fwd = sparse.vstack(blocks, format="csr")
    # iradon: pad the circle sinogram to the square's diagonal, filter, back-project linearly
    diag = int(np.ceil(np.sqrt(2) * size))
    pad_before = diag // 2 - size // 2
    n_fft = max(64, int(2 ** np.ceil(np.log2(2 * diag))))
    radius = size // 2
    xpr = (rows_out.ravel() - radius).astype(np.float64)[inside.ravel()]
    ypr = (cols_out.ravel() - radius).astype(np.float64)[inside.ravel()]
    npix = len(xpr)
    pix = np.arange(npix)
    x_first, x_last = -(diag // 2), diag - 1 - diag // 2
    blocks = []
    for a in theta:
        t = ypr * np.cos(a) - xpr * np.sin(a)
        ok = (t >= x_first) & (t <= x_last)
        j = np.minimum(np.floor(t[ok] - x_first).astype(np.int64), diag - 2)
        f = (t[ok] - x_first) - j
        blocks.append(sparse.csr_matrix(
            (np.concatenate([1.0 - f, f]).astype(np.float32),
             (np.concatenate([j, j + 1]), np.concatenate([pix[ok], pix[ok]]))), shape=(diag, npix)))
    back = sparse.vstack(blocks, format="csr").T.tocsr()  # (pixels, views * diag)
    del blocks
    back.eliminate_zeros()
    return Projector(size, views, fwd, back, inside, diag, pad_before, n_fft)


def radon_skimage(images: np.ndarray, views: int) -> np.ndarray:
    """Reference: skimage `radon(circle=True)` of each image -> (n, views, size), float64."""
    from skimage.transform import radon

    theta = _angles(views)
    return np.stack([radon(np.asarray(im, np.float64), theta, circle=True).T for im in images])


def fbp_skimage(sinograms: np.ndarray, filter_name: str = "hann") -> np.ndarray:
    """Reference: skimage `iradon(circle=True, interpolation="linear")` -> (n, size, size)."""
    from skimage.transform import iradon

    views = sinograms.shape[1]
    return np.stack([iradon(np.asarray(s, np.float64).T, _angles(views), filter_name=filter_name,
                            circle=True) for s in sinograms])


def add_lowdose_noise(clean_hu: np.ndarray, dose: np.ndarray, rngs, *, spacing_mm: float,
                      views: int = 360, filter_name: str = "hann", i0_full: float = I0_FULL,
                      proj: Projector | None = None, batch: int = 32) -> np.ndarray:
    """Low-dose versions (n, H, W) HU of clean slices: clean + FBP(Poisson sinogram noise).

    `dose` (n,) is each slice's fraction of full dose; `rngs` (n,) the numpy Generators that draw
    each slice's counts (one patient's stream may appear several times, in slice order).
    Slices go through the projector `batch` at a time (memory: ~12 MB per 256-px slice).
    """
    clean_hu = np.asarray(clean_hu, np.float32)
    n, h, w = clean_hu.shape
    if h != w:
        raise UserError(f"low-dose simulation needs square slices, got {h}x{w}")
    proj = proj or projector(h, views)
    i0 = i0_per_ray(np.asarray(dose, np.float64), spacing_mm, views, i0_full)
    if i0.shape != (n,) or len(rngs) != n or np.any(~(i0 > 0)):
        raise UserError(f"low-dose simulation needs one dose > 0 and one generator per slice ({n})")
    out = np.empty_like(clean_hu)
    for a in range(0, n, batch):
        b = min(n, a + batch)
        mu = hu_to_mu(clean_hu[a:b]) * proj.inside
        p = proj.forward(mu) * np.float32(spacing_mm)  # line integrals (mm)
        dp = np.empty_like(p)
        for k in range(a, b):
            lam = i0[k] * np.exp(-p[k - a].astype(np.float64))
            counts = np.maximum(rngs[k].poisson(lam), 1)
            dp[k - a] = np.log(i0[k] / counts) - p[k - a]
        noise_mu = proj.fbp(dp / np.float32(spacing_mm), filter_name)
        out[a:b] = clean_hu[a:b] + noise_mu * np.float32(1000.0 / MU_WATER_PER_MM)
    return out


class RenderCache:
    """Per-patient cache of a phantom's low-dose slices (contrast, non-contrast) in $GENMED_CACHE_DIR.

    The key hashes what the noise depends on: `CACHE_VERSION`, `I0_FULL`, the phantom config
    (all fields but `chunk`), the seed, the patient index and the slice heights; an entry is used
    only if the patient's clean slices still have the SHA-1 stored with it.
    """

    def __init__(self, folder: Path, cfg, seed: int, z_rel: np.ndarray) -> None:
        from genmed.config import to_dict

        conf = {k: v for k, v in to_dict(cfg).items() if k != "chunk"}
        blob = json.dumps({"v": CACHE_VERSION, "i0": I0_FULL, "mu": MU_WATER_PER_MM, "cfg": conf,
                           "seed": int(seed), "z": np.asarray(z_rel, np.float64).round(6).tolist()},
                          sort_keys=True)
        self.folder = folder / "phantom-lowdose" / hashlib.sha1(blob.encode()).hexdigest()[:20]

    @classmethod
    def from_env(cls, cfg, seed: int, z_rel: np.ndarray) -> RenderCache | None:
        folder = cache_dir()
        return cls(folder, cfg, seed, z_rel) if folder else None

    def _path(self, patient: int) -> Path:
        return self.folder / f"p{patient:06d}.npz"

    @staticmethod
    def _digest(clean: np.ndarray, clean_nc: np.ndarray) -> str:
        h = hashlib.sha1(np.ascontiguousarray(clean, np.float32).tobytes())
        h.update(np.ascontiguousarray(clean_nc, np.float32).tobytes())
        return h.hexdigest()

    def load(self, patient: int, clean: np.ndarray, clean_nc: np.ndarray):
        """(image, image_nc) of `patient` if cached for exactly these clean slices, else None."""
        path = self._path(patient)
        if not path.is_file():
            return None
        try:
            with np.load(path) as z:
                if str(z["clean_sha1"]) != self._digest(clean, clean_nc) or z["image"].shape != clean.shape:
                    return None  # the phantom's rendering changed: simulate again
                return z["image"], z["image_nc"]
        except (OSError, KeyError, ValueError):
            return None

    def save(self, patient: int, clean: np.ndarray, clean_nc: np.ndarray, image: np.ndarray,
             image_nc: np.ndarray) -> None:
        from genmed.fileio import atomic_path

        with atomic_path(self._path(patient)) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, image=image.astype(np.float32), image_nc=image_nc.astype(np.float32),
                     clean_sha1=np.array(self._digest(clean, clean_nc)))
