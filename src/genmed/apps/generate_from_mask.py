"""CT slices from a label map plus attributes, with a SPADE diffusion UNet, and checks that the
generated images obey the conditions.

Condition map (uint8, H x W): 0 outside the body, 1 body, 2 kidney, 3 lesion (`CLASSES`).
Attributes: "kind" (healthy | benign | malignant; a lesion kind needs lesion pixels in the map,
"healthy" none), "noise" (standard | low-dose) and optionally "size_mm" (lesion diameter; the map
sets the size, so a given size must agree with the map's lesion within 1.5 pixels).
The model: `ConditionalDiffusion(kind="spade")`, MONAI `SPADEDiffusionModelUNet` (Park et al.
2019; Wang et al. 2022) with the one-hot map as `seg` and the attribute pair as a class
embedding (kind x noise: 6 classes).
Checks (Sec. "obeys the conditions"): a MONAI UNet segmenter trained on real slices recovers
the map from generated images (Dice per class), a classifier trained on real slices recovers the
requested kind (accuracy), and the noise SD of generated images is measured per requested noise
level; every check is also run on real held-out slices with the same maps.
`generate_pairs(masks, attributes, model)` returns images for the few-labels segmentation study.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genmed.apps.common import HU_WINDOW, UNIT_PER_HU, phantom, seeded, to_hu, to_unit
from genmed.data.phantom import LABELS
from genmed.errors import UserError, check_positive, check_range
from genmed.fileio import save_figure, write_json

CLASSES: tuple[str, ...] = ("background", "body", "kidney", "lesion")
NOISE_LEVELS: tuple[str, ...] = ("standard", "low-dose")
ATTRIBUTES: tuple[str, ...] = ("kind", "noise", "size_mm")


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

    def __post_init__(self) -> None:
        for name in ("size", "n_train_patients", "n_test_patients", "diffusion_steps",
                     "checker_steps", "sample_steps"):
            check_positive(name, getattr(self, name))
        if self.size % 4:
            raise UserError(f"size={self.size} must be a multiple of 4")


def condition_maps(slices) -> np.ndarray:
    """(N, H, W) uint8 condition maps of phantom slices (body from the clean image > -500 HU)."""
    m = (slices.clean > -500).astype(np.uint8)
    m[slices.kidney_mask > 0] = 2
    m[slices.lesion_mask > 0] = 3
    return m


def attributes_of(slices) -> list[dict[str, Any]]:
    """The true attributes of phantom slices."""
    return [{"kind": LABELS[int(k)], "noise": NOISE_LEVELS[int(n)]}
            for k, n in zip(slices.label, slices.noisy)]


def encode(masks: np.ndarray, attributes: Sequence[Mapping[str, Any]], size: int,
           spacing_mm: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate maps + attributes; return one-hot maps (N, 4, H, W) and class ids (N,) =
    kind * 2 + noise. UserError for a wrong shape, unknown value/attribute or a contradiction."""
    masks = np.asarray(masks)
    if masks.ndim == 2:
        masks = masks[None]
    if masks.ndim != 3 or masks.shape[1:] != (size, size):
        raise UserError(f"mask of shape {masks.shape} does not fit the model: expected (N, {size}, {size})")
    if masks.min() < 0 or masks.max() >= len(CLASSES) or not np.array_equal(masks, np.round(masks)):
        raise UserError(f"mask values must be integers 0..{len(CLASSES) - 1} ({', '.join(CLASSES)})")
    if len(attributes) != len(masks):
        raise UserError(f"{len(masks)} masks but {len(attributes)} attribute sets")
    ids = []
    for i, (m, a) in enumerate(zip(masks, attributes)):
        unknown = sorted(set(a) - set(ATTRIBUTES))
        if unknown:
            raise UserError(f"unknown attribute(s) {', '.join(unknown)}; known: {', '.join(ATTRIBUTES)}")
        kind, noise = a.get("kind", "healthy"), a.get("noise", "standard")
        if kind not in LABELS:
            raise UserError(f"kind={kind!r} is not one of {', '.join(LABELS)}")
        if noise not in NOISE_LEVELS:
            raise UserError(f"noise={noise!r} is not one of {', '.join(NOISE_LEVELS)}")
        n_les = int((m == 3).sum())
        if (kind == "healthy") != (n_les == 0):
            raise UserError(f"mask {i}: kind={kind!r} but the mask has {n_les} lesion pixels")
        if "size_mm" in a:
            if isinstance(a["size_mm"], bool) or not isinstance(a["size_mm"], (int, float)):
                raise UserError(f"size_mm={a['size_mm']!r} must be a number (mm)")
            check_range("size_mm", a["size_mm"], 0, 1000)
        if "size_mm" in a and spacing_mm is not None:
            d_mask = 2.0 * np.sqrt(n_les / np.pi) * spacing_mm
            if abs(float(a["size_mm"]) - d_mask) > 1.5 * spacing_mm:
                raise UserError(f"mask {i}: size_mm={a['size_mm']} but the mask's lesion is "
                                f"{d_mask:.1f} mm across")
        ids.append(LABELS.index(kind) * 2 + NOISE_LEVELS.index(noise))
    onehot = torch.nn.functional.one_hot(torch.from_numpy(masks.astype(np.int64)), len(CLASSES))
    return onehot.permute(0, 3, 1, 2).float(), torch.tensor(ids, dtype=torch.long)


def train_mask_generator(cfg: MaskGenConfig = MaskGenConfig()):
    """Train the SPADE diffusion model on phantom slices (all kinds and doses)."""
    from genmed.apps.conditional import ConditionalDiffusion
    from genmed.apps.supervised import DictDataset, fit

    tr = _train_slices(cfg)
    cond, ids = encode(condition_maps(tr), attributes_of(tr), cfg.size)
    model = ConditionalDiffusion(size=cfg.size, cond_channels=len(CLASSES), kind="spade",
                                 num_classes=len(LABELS) * len(NOISE_LEVELS))
    return fit(model, DictDataset(image=to_unit(tr.image), cond=cond, label=ids),
               steps=cfg.diffusion_steps, lr=2e-3, seed=cfg.seed, ema=True)


def generate_pairs(masks: np.ndarray, attributes: Sequence[Mapping[str, Any]], model, *,
                   steps: int = 20, seed: int = 0, spacing_mm: float | None = None) -> np.ndarray:
    """Images (N, H, W) in HU for condition maps `masks` (N, H, W) and `attributes` (N dicts)."""
    cond, ids = encode(masks, attributes, model.size, spacing_mm)
    return to_hu(model.generate(cond, ids, steps=steps, generator=seeded(seed)))


def _train_slices(cfg: MaskGenConfig, test: bool = False):
    n = cfg.n_test_patients if test else cfg.n_train_patients
    return phantom(n, cfg.size, cfg.seed + (1000 if test else 0), lesion_prob=0.9,
                   lesion_diameter_mm=(12.0, 48.0), noisy_fraction=0.3)


def _checkers(cfg: MaskGenConfig, tr):
    from genmed.apps.supervised import DictDataset, SupervisedNet, classifier, fit, unet

    x = to_unit(tr.image)
    seg = SupervisedNet(unet(2, 1, len(CLASSES)), "segment", (1, cfg.size, cfg.size))
    fit(seg, DictDataset(image=x, target=torch.from_numpy(condition_maps(tr)[:, None].astype(np.int64))),
        steps=cfg.checker_steps, lr=2e-3, seed=cfg.seed)
    cls = SupervisedNet(classifier(1, cfg.size, len(LABELS)), "classify", (1, cfg.size, cfg.size))
    fit(cls, DictDataset(image=x, label=torch.from_numpy(tr.label)), steps=cfg.checker_steps,
        lr=2e-3, seed=cfg.seed)
    return seg, cls


def check_conditions(images_hu: np.ndarray, masks: np.ndarray, kinds: np.ndarray, noisy: np.ndarray,
                     seg, cls) -> dict[str, Any]:
    """Dice per class of the segmenter's map vs `masks`, kind accuracy, noise SD per level."""
    from genmed.apps.denoisers import estimate_sigma

    x = to_unit(images_hu)
    pred = seg.predict(x)[:, 0].numpy()
    dice = {}
    for c in (2, 3):
        p, g = pred == c, masks == c
        dice[CLASSES[c]] = float(2 * (p & g).sum() / max(p.sum() + g.sum(), 1))
    acc = float((cls.predict(x).numpy() == kinds).mean())
    sd = estimate_sigma(images_hu)
    return {"dice": dice, "kind_accuracy": acc,
            "noise_sd_hu": {lvl: float(sd[noisy == (j == 1)].mean()) if (noisy == (j == 1)).any() else None
                            for j, lvl in enumerate(NOISE_LEVELS)}}


def run_generate_from_mask(cfg: MaskGenConfig = MaskGenConfig(), out: str | Path | None = None) -> dict[str, Any]:
    """Train generator and checkers, generate from the held-out maps, run the checks on
    generated and on real images."""
    tr, te = _train_slices(cfg), _train_slices(cfg, test=True)
    model = train_mask_generator(cfg)
    seg, cls = _checkers(cfg, tr)
    masks, attrs = condition_maps(te), attributes_of(te)
    fake = generate_pairs(masks, attrs, model, steps=cfg.sample_steps, seed=cfg.seed)
    result = {"config": asdict(cfg), "n_test": len(masks), "classes": list(CLASSES),
              "window_hu": {"level": HU_WINDOW[0], "width": HU_WINDOW[1]},
              "generated": check_conditions(fake, masks, te.label, te.noisy, seg, cls),
              "real": check_conditions(te.image, masks, te.label, te.noisy, seg, cls)}
    if out is not None:
        out = Path(out)
        write_json(out / "generate_from_mask.json", result)
        save_figure(_figure(masks, te.image, fake, attrs), out / "generate_from_mask.png")
    return result


def _figure(masks: np.ndarray, real: np.ndarray, fake: np.ndarray, attrs, n: int = 6):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    idx = np.argsort(-(masks == 3).sum((1, 2)))[:n]
    fig, ax = plt.subplots(3, len(idx), figsize=(1.6 * len(idx), 5.0), squeeze=False)
    for j, k in enumerate(idx):
        ax[0, j].imshow(masks[k], cmap="viridis", vmin=0, vmax=3)
        ax[0, j].set_title(f"{attrs[k]['kind']}\n{attrs[k]['noise']}", fontsize=7)
        ax[1, j].imshow(real[k], cmap="gray", vmin=-160, vmax=240)
        ax[2, j].imshow(fake[k], cmap="gray", vmin=-160, vmax=240)
    for a in ax.ravel():
        a.axis("off")
    ax[1, 0].text(-2, 8, "real", rotation=90, fontsize=8, ha="right")
    ax[2, 0].text(-2, 8, "generated", rotation=90, fontsize=8, ha="right")
    return fig


def load_mask(path: str | Path, reference: str | Path | None = None) -> tuple[np.ndarray, float]:
    """Read a condition map (NIfTI / PNG / DICOM label image, values 0..3) and its in-plane
    spacing (mm); with `reference` (an image file), its spacing must match the mask's."""
    from genmed.data.io import load

    m = load(path, ndim=(2, 3))
    if reference is not None:
        r = load(reference, ndim=(2, 3))
        if not np.allclose(r.spacing[-2:], m.spacing[-2:], rtol=1e-3):
            raise UserError(f"{reference}: spacing {tuple(r.spacing[-2:])} mm differs from the "
                            f"mask's {tuple(m.spacing[-2:])} mm ({path})")
        if r.array.shape[-2:] != m.array.shape[-2:]:
            raise UserError(f"{reference}: shape {r.array.shape} differs from the mask's {m.array.shape}")
    arr = m.array if m.ndim == 3 else m.array[None]
    return arr, float(m.spacing[-1])
