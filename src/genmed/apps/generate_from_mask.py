"""CT slices from a label map plus attributes, with a SPADE diffusion UNet, and checks that the
generated images obey the conditions.

Condition map (uint8, H x W): 0 outside the body, 1 body, 2 kidney, 3 lesion (`CLASSES`).
Attributes: "kind" (healthy | benign | malignant; a lesion kind needs lesion pixels in the map,
"healthy" none), "noise" (standard | low-dose) and optionally "noise_hu" (scan noise SD in HU,
for a latent model with a fitted noise texture) and "size_mm" (lesion diameter; the map
sets the size, so a given size must agree with the map's lesion within 1.5 pixels).
The model: `genmed.models` diffusion with `cond_kind="spade"`, MONAI `SPADEDiffusionModelUNet`
(Park et al. 2019; Wang et al. 2022) with the one-hot map as `seg` and the attribute pair as a
class embedding (kind x noise: 6 classes, plus the null class of classifier-free guidance).
Checks (Sec. "obeys the conditions"): a MONAI UNet segmenter trained on real slices recovers
the map from generated images (Dice per class), a classifier trained on real slices recovers the
requested kind (accuracy), and the noise SD of generated images is measured per requested noise
level; every check is also run on real held-out slices with the same maps.
`generate_pairs(masks, attributes, model)` returns images for the few-labels segmentation study.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genmed.apps.common import phantom, to_hu, to_unit
from genmed.data.augment import AugmentKind
from genmed.data.conditions import (CLASSES, NOISE_LEVELS, attributes_of,
                                    condition_maps, encode)
from genmed.data.phantom import LABELS
from genmed.data.transforms import ABDOMEN_RANGE_HU, ABDOMEN_WINDOW_HU
from genmed.errors import UserError, check_positive
from genmed.fileio import save_figure, write_json
from genmed.models.mask_generation import generate_from_maps, mask_diffusion
from genmed.models.noise_texture import NoiseTexture
from genmed.models.slicewise import MAP_GUIDANCE, NOISE_CORRELATION
from genmed.train.fitting import Compute

NOISE_TEXTURE = "noise_texture.npz"  # scan noise spectra kept in a mask model's run folder


def texture_of(run: Path) -> NoiseTexture | None:
    """The scan-noise texture kept in a mask model's run folder (`NOISE_TEXTURE`), or None."""
    return NoiseTexture.load(run / NOISE_TEXTURE) if (run / NOISE_TEXTURE).is_file() else None


@dataclass(frozen=True)
class MaskGenConfig:
    """Settings of the mask-conditioned generation benchmark."""

    size: int = 32
    n_train_patients: int = 40
    n_test_patients: int = 8
    diffusion_steps: int = 1000
    checker_steps: int = 300  # segmenter and classifier training steps
    sample_steps: int = 20
    seed: int = 0
    compute: Compute = field(default_factory=Compute)  # training device and precision

    def __post_init__(self) -> None:
        for name in ("size", "n_train_patients", "n_test_patients", "diffusion_steps",
                     "checker_steps", "sample_steps"):
            check_positive(name, getattr(self, name))
        if self.size % 4:
            raise UserError(f"size={self.size} must be a multiple of 4")


def train_mask_generator(cfg: MaskGenConfig = MaskGenConfig(), run: str | Path | None = None):
    """Train the SPADE diffusion model on phantom slices (all kinds and doses); with `run`, keep
    its engine run folder there (for `genmed apps generate-from-mask --model RUN`)."""
    from genmed.train import DictDataset

    tr = _train_slices(cfg)
    cond, ids = encode(condition_maps(tr), attributes_of(tr), cfg.size)
    return cfg.compute.fit(mask_diffusion(cfg.size), DictDataset(image=to_unit(tr.image), cond=cond,
                                                                label=ids),
                           steps=cfg.diffusion_steps, seed=cfg.seed, out=run)


def generate_pairs(masks: np.ndarray, attributes: Sequence[Mapping[str, Any]], model, *,
                   steps: int = 20, seed: int = 0, spacing_mm: float | None = None,
                   texture: NoiseTexture | None = None, map_guidance: float = 0.0,
                   map_guidance_healthy: float | None = None) -> np.ndarray:
    """Images (N, H, W) in HU for condition maps `masks` (N, H, W) and `attributes` (N dicts);
    with `texture`, each requested level's scan noise added after decoding; map guidance
    `map_guidance` for maps with a lesion, `map_guidance_healthy` for the others
    (`generate_from_maps`)."""
    return to_hu(generate_from_maps(model, masks, attributes, steps=steps, seed=seed,
                                    spacing_mm=spacing_mm, texture=texture, map_guidance=map_guidance,
                                    map_guidance_healthy=map_guidance_healthy))


def generate_volume(volume_map: np.ndarray, attributes: Mapping[str, Any], model, *, steps: int = 50,
                    seed: int = 0, spacing_mm: Sequence[float] | None = None,
                    texture: NoiseTexture | None = None,
                    noise_correlation: float = NOISE_CORRELATION,
                    map_guidance: float = MAP_GUIDANCE) -> np.ndarray:
    """A volume (D, H, W) in HU for a 3-D map (D, H, W) and the volume's `attributes` from a
    2-D mask model, axial slice by axial slice from initial noises whose adjacent slices
    correlate by `noise_correlation` (1: one shared noise; `models/slicewise.py`), steered
    towards the map's organs by `map_guidance` (0: off; `models/map_guidance.py`); with
    `texture`, each slice gets its own draw of the level's scan noise inside the body."""
    from genmed.models.mask_generation import add_scan_noise, check_noise_request
    from genmed.models.slicewise import sample_volume_slicewise

    check_noise_request([attributes], texture, tuple(np.shape(volume_map)[-2:]))
    x = sample_volume_slicewise(model, volume_map, attributes, steps=steps, seed=seed, spacing_mm=spacing_mm,
                                noise_correlation=noise_correlation, map_guidance=map_guidance)
    if texture is not None:
        x = add_scan_noise(x, [attributes], texture, seed, body=np.asarray(volume_map)[None] > 0)
    return to_hu(x)[0]


def _train_slices(cfg: MaskGenConfig, test: bool = False):
    n = cfg.n_test_patients if test else cfg.n_train_patients
    return phantom(n, cfg.size, cfg.seed + (1000 if test else 0), lesion_prob=0.9,
                   lesion_diameter_mm=(12.0, 48.0), noisy_fraction=0.3)


def _checkers(cfg: MaskGenConfig, tr):
    """A segmenter of the condition map and a lesion-kind classifier, trained on real slices."""
    return train_checkers(tr.image, condition_maps(tr), tr.label, cfg.checker_steps, cfg.compute, cfg.seed)


def train_checkers(images_hu: np.ndarray, maps: np.ndarray, kinds: np.ndarray, steps: int,
                   compute: Compute = Compute(), seed: int = 0, augment: AugmentKind = "none",
                   out: Path | None = None):
    """A segmenter of the condition map and a lesion-kind classifier (index into LABELS),
    trained for `steps` steps on real slices `images_hu` (N, H, W) with their `maps` and
    `kinds`: the readers of `check_conditions`. `augment` ("quality": blur, noise, low
    resolution; `genmed.data.augment`) makes both read smooth images as well as noisy ones.
    With `out`, their runs are kept in out/segmenter and out/classifier (`load_run`)."""
    from genmed.models import build_model
    from genmed.train import DictDataset

    def where(name: str) -> dict[str, str]:
        return {} if out is None else {"out": str(Path(out) / name)}

    size = images_hu.shape[-1]
    x = to_unit(images_hu)
    target = torch.from_numpy(maps[:, None].astype(np.int64))
    seg = compute.fit(build_model("segmenter", size=size, out_channels=len(CLASSES), augment=augment),
                      DictDataset(image=x, target=target), steps=steps, seed=seed, **where("segmenter"))
    cls = compute.fit(build_model("classifier", size=size, classes=len(LABELS), backbone="classifier",
                                  augment=augment),
                      DictDataset(image=x, label=torch.from_numpy(np.asarray(kinds, np.int64))),
                      steps=steps, seed=seed, **where("classifier"))
    return seg, cls


def check_conditions(images_hu: np.ndarray, masks: np.ndarray, kinds: np.ndarray, noisy: np.ndarray,
                     seg, cls, spacing_mm: float | None = None, groups: np.ndarray | None = None) -> dict[str, Any]:
    """Dice per class of the segmenter's map vs `masks`, kind accuracy (over all slices, and
    over the slices whose kind is not healthy), noise SD per level:
    the wavelet MAD of the whole slice (white noise), or with `spacing_mm` (mm per pixel) the
    soft-tissue local-SD mode (`estimate_sigma_mode`), which sees correlated CT noise and
    only the body: a windowed generated slice has no noise in its air, a raw HU scan does.
    With `groups` (one key per slice, e.g. its volume): "kidney_overlap_by_group", per sorted
    key [2 |pred & mask|, |pred| + |mask|] in kidney pixels, so that a cluster bootstrap over
    the groups can resample the pooled Dice (sum of firsts / sum of seconds)."""
    from genmed.apps.denoisers import estimate_sigma, estimate_sigma_mode

    x = to_unit(images_hu)
    pred = seg.predict(x)[:, 0].numpy()
    dice = {}
    for c in (2, 3):
        p, g = pred == c, masks == c
        dice[CLASSES[c]] = float(2 * (p & g).sum() / max(p.sum() + g.sum(), 1))
    overlap = {}
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != (len(masks),):
            raise UserError(f"groups has shape {groups.shape}; expected one key per slice ({len(masks)})")
        p, g = pred == 2, masks == 2
        per_slice = np.stack([2 * (p & g).sum((1, 2)), p.sum((1, 2)) + g.sum((1, 2))], 1)
        _, group = np.unique(groups, return_inverse=True)
        by_group = np.zeros((group.max() + 1, 2), np.int64)
        np.add.at(by_group, group, per_slice)
        overlap = {"kidney_overlap_by_group": by_group.tolist()}
    hit = cls.predict(x).numpy() == kinds
    lesion = np.asarray(kinds) != 0  # without these, answering "healthy" scores the healthy share
    sd = estimate_sigma(images_hu) if spacing_mm is None else estimate_sigma_mode(images_hu, spacing_mm)
    return {"dice": dice, "kind_accuracy": float(hit.mean()),
            "kind_accuracy_lesion_slices": float(hit[lesion].mean()) if lesion.any() else None,
            "noise_sd_hu": {lvl: float(sd[noisy == (j == 1)].mean()) if (noisy == (j == 1)).any() else None
                            for j, lvl in enumerate(NOISE_LEVELS)}} | overlap


def run_generate_from_mask(cfg: MaskGenConfig = MaskGenConfig(), out: str | Path | None = None) -> dict[str, Any]:
    """Train generator and checkers, generate from the held-out maps, run the checks on
    generated and on real images; with `out`, the generator's run folder is kept in out/model."""
    torch.manual_seed(cfg.seed)  # weight initialisation: independent of what ran before
    tr, te = _train_slices(cfg), _train_slices(cfg, test=True)
    model = train_mask_generator(cfg, None if out is None else Path(out) / "model")
    seg, cls = _checkers(cfg, tr)
    masks, attrs = condition_maps(te), attributes_of(te)
    fake = generate_pairs(masks, attrs, model, steps=cfg.sample_steps, seed=cfg.seed)
    result = {"config": asdict(cfg), "n_test": len(masks), "classes": list(CLASSES),
              "window_hu": {"level": ABDOMEN_WINDOW_HU[0], "width": ABDOMEN_WINDOW_HU[1]},
              "generated": check_conditions(fake, masks, te.label, te.noisy, seg, cls),
              "real": check_conditions(te.image, masks, te.label, te.noisy, seg, cls)}
    if out is not None:
        out = Path(out)
        write_json(out / "generate_from_mask.json", result)
        save_figure(_figure(masks, te.image, fake, attrs), out / "generate_from_mask.png")
    return result


def map_style():
    """(cmap, norm) that draw a condition map in four fixed colours, one per class of CLASSES."""
    from matplotlib.colors import BoundaryNorm, ListedColormap

    cmap = ListedColormap(["black", "#4c72b0", "#55a868", "#e8c547"])
    return cmap, BoundaryNorm(np.arange(-0.5, len(CLASSES)), cmap.N)


def map_and_hu_colorbars(fig, im_map, map_axes, im_hu, hu_axes, fraction: float = 0.03,
                         fontsize: int = 8) -> None:
    """A class colour bar beside the condition-map axes and an HU bar (naming the abdomen
    window) beside the image axes."""
    lo, hi = ABDOMEN_RANGE_HU
    bar = fig.colorbar(im_map, ax=list(map_axes), ticks=range(len(CLASSES)), fraction=fraction)
    bar.ax.set_yticklabels(CLASSES, fontsize=fontsize)
    fig.colorbar(im_hu, ax=list(hu_axes), fraction=fraction).set_label(
        f"HU (window W{hi - lo:.0f}/L{(hi + lo) / 2:.0f})", fontsize=fontsize)


def _figure(masks: np.ndarray, real: np.ndarray, fake: np.ndarray, attrs, n: int = 6):
    """Condition maps (with a class colour bar), real and generated slices (HU colour bar, the
    abdomen window stated)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    idx = np.argsort(-(masks == 3).sum((1, 2)))[:n]
    lo, hi = ABDOMEN_RANGE_HU
    cmap, norm = map_style()
    fig, ax = plt.subplots(3, len(idx), figsize=(1.7 * len(idx) + 1.2, 5.4), squeeze=False)
    for j, k in enumerate(idx):
        im_map = ax[0, j].imshow(masks[k], cmap=cmap, norm=norm)
        ax[0, j].set_title(f"{attrs[k]['kind']}\n{attrs[k]['noise']}", fontsize=7)
        ax[1, j].imshow(real[k], cmap="gray", vmin=lo, vmax=hi)
        im_hu = ax[2, j].imshow(fake[k], cmap="gray", vmin=lo, vmax=hi)
    for a in ax.ravel():
        a.set_xticks([])
        a.set_yticks([])
    for row, label in enumerate(("condition map", "real", "generated")):
        ax[row, 0].set_ylabel(label, fontsize=8)
    map_and_hu_colorbars(fig, im_map, ax[0], im_hu, ax[1:].ravel(), fontsize=7)
    fig.suptitle(f"Generation from a label map + attributes (window W{hi - lo:.0f}/L{(hi + lo) / 2:.0f} HU)",
                 fontsize=9)
    return fig


def layout_figure(masks: np.ndarray, fake: np.ndarray, title: str):
    """Drawn condition maps (class colour bar) above the slices generated from them (HU colour
    bar, the abdomen window stated): `genmed apps generate-from-class`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lo, hi = ABDOMEN_RANGE_HU
    cmap, norm = map_style()
    fig, ax = plt.subplots(2, len(masks), figsize=(1.9 * len(masks) + 1.4, 4.4), squeeze=False)
    for j, (m, img) in enumerate(zip(masks, fake)):
        im_map = ax[0, j].imshow(m, cmap=cmap, norm=norm)
        im_hu = ax[1, j].imshow(img, cmap="gray", vmin=lo, vmax=hi)
    for a in ax.ravel():
        a.set_xticks([])
        a.set_yticks([])
    ax[0, 0].set_ylabel("drawn map", fontsize=8)
    ax[1, 0].set_ylabel("generated", fontsize=8)
    map_and_hu_colorbars(fig, im_map, ax[0], im_hu, ax[1], fontsize=7)
    fig.suptitle(f"Class -> layout -> image: {title} (window W{hi - lo:.0f}/L{(hi + lo) / 2:.0f} HU)", fontsize=9)
    return fig


def load_mask(path: str | Path, reference: str | Path | None = None,
              spatial_dims: int = 2) -> tuple[np.ndarray, tuple[float, ...]]:
    """Read a condition map (NIfTI / PNG / DICOM label image, values 0..3) and its spacing (mm,
    one per axis of the file: (row, column) or (slice, row, column)). For a 2-D model: maps
    (N, H, W), one per slice of the file; for a 3-D model: the file's volume as (1, D, H, W).
    With `reference` (an image file), its spacing and shape must match the mask's."""
    from genmed.data.io import load

    m = load(path, ndim=(2, 3) if spatial_dims == 2 else 3)
    if reference is not None:
        r = load(reference, ndim=(2, 3))
        axes = spatial_dims  # the axes that must agree: in-plane, or all three
        if not np.allclose(r.spacing[-axes:], m.spacing[-axes:], rtol=1e-3):
            raise UserError(f"{reference}: spacing {tuple(r.spacing[-axes:])} mm differs from the "
                            f"mask's {tuple(m.spacing[-axes:])} mm ({path})")
        if r.array.shape[-axes:] != m.array.shape[-axes:]:
            raise UserError(f"{reference}: shape {r.array.shape} differs from the mask's {m.array.shape}")
    arr = m.array if m.ndim == 3 and spatial_dims == 2 else m.array[None]
    return arr, tuple(float(v) for v in m.spacing[-m.ndim:])
