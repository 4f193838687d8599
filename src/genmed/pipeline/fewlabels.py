"""Few labels, many unlabelled slices (the source's Part B): segmentation with 10% of the masks.

Patients are split into held-out test patients and a training pool; only `label_fraction` of
the pool's patients keep their kidney masks. Arms, each with every seed:

- supervised: the UNet trained on the labelled slices only;
- pseudo-label: that network labels the unlabelled slices (thresholded, two largest
  components); the `keep` most confident of them (mean per-pixel max(p, 1 - p)) join the
  labelled slices and a fresh network is trained on the union (Lee 2013, "Pseudo-Label");
- mask-generated pairs: a mask-conditioned diffusion model (`genmed.apps`, SPADE UNet,
  conditioned on the body/kidney/lesion map plus lesion kind and dose) is trained on the
  labelled slices only; it then draws `gen_pairs` new images per labelled slice for the
  labelled masks (randomly left-right flipped), and those pairs join the labelled slices;
- all labels: every pool mask (the ceiling, for reference).

Every arm takes the same number of optimiser steps, so a small labelled set is not also a
short training run. Dice on the test patients: mean and 95% Student-t CI over seeds.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from genmed.data.phantom import PhantomConfig
from genmed.data.splits import patient_split
from genmed.errors import UserError
from genmed.fileio import atomic_path, write_json
from genmed.metrics.stats import mean_ci
from genmed.pipeline.cases import phantom_cases
from genmed.pipeline.segmentation import SegConfig, dice_per_slice, predict_masks, predict_probs, \
    probs_to_masks, train_segmenter
from genmed.train.fitting import Compute

ARMS = ("supervised", "pseudo-label", "mask-generated pairs", "all labels")
MASK_CONDITIONED_NOTE = ("mask-generated pairs: genmed.apps mask-conditioned SPADE diffusion trained on the "
                         "labelled slices only; generated images paired with (flipped) labelled masks")


@dataclass(frozen=True)
class FewLabelsConfig:
    """Study settings (pixels, patients, optimiser steps)."""

    size: int = 64
    n_patients: int = 60
    slices_per_patient: int = 8
    test_fraction: float = 0.25  # held-out test patients
    label_fraction: float = 0.1  # pool patients that keep their masks
    keep: float = 0.8  # fraction of pseudo-labelled slices used (most confident first)
    steps: int = 600  # optimiser steps per arm
    gen_steps: int = 300  # mask-conditioned diffusion training steps
    gen_sample_steps: int = 20  # its sampler steps
    gen_pairs: float = 2.0  # generated pairs per labelled slice
    seeds: tuple[int, ...] = (0, 1, 2)
    seg: SegConfig = field(default_factory=SegConfig)
    arms: tuple[str, ...] = ARMS
    data_seed: int = 200
    compute: Compute = field(default_factory=Compute)  # training device and precision

    def __post_init__(self) -> None:
        if not 0 < self.label_fraction < 1:
            raise UserError(f"label fraction={self.label_fraction} must be in (0, 1)")
        if not 0 < self.keep <= 1 or not 0 < self.test_fraction < 1:
            raise UserError("keep must be in (0, 1] and test_fraction in (0, 1)")
        if self.steps < 1 or not self.seeds:
            raise UserError("steps must be >= 1 and at least one seed given")
        bad = [a for a in self.arms if a not in ARMS]
        if bad:
            raise UserError(f"arms {bad} are not among {', '.join(ARMS)}")


def quick_few_labels_config(**overrides) -> FewLabelsConfig:
    """Test-suite settings: 20 small patients, 2 seeds, a few steps."""
    base = dict(size=32, n_patients=20, slices_per_patient=4, steps=6, label_fraction=0.2, gen_steps=2, seeds=(0, 1),
                gen_sample_steps=2, seg=SegConfig(patch=32, channels=(8, 16, 32)))
    return FewLabelsConfig(**{**base, **overrides})


def _train(images: np.ndarray, masks: np.ndarray, cfg: FewLabelsConfig, seed: int):
    """A segmenter trained for exactly `cfg.steps` optimiser steps."""
    return train_segmenter(images, masks, cfg.seg, seed=seed, compute=cfg.compute, steps=cfg.steps)


def mask_generated_pairs(images: np.ndarray, kidney: np.ndarray, lesion: np.ndarray, labels: np.ndarray,
                         noisy: np.ndarray, n: int, cfg: FewLabelsConfig, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` (image in [-1, 1], kidney mask) pairs from a mask-conditioned diffusion model trained on
    the given labelled slices (condition map: 0 air, 1 body, 2 kidney, 3 lesion; kind and dose)."""
    import torch

    from genmed.data.conditions import NOISE_LEVELS, encode
    from genmed.data.phantom import LABELS
    from genmed.models.mask_generation import generate_from_maps, mask_diffusion
    from genmed.train import DictDataset

    maps = (images > -0.98).astype(np.uint8)  # body: above -156 HU
    maps[kidney > 0] = 2
    maps[lesion > 0] = 3
    attrs = [{"kind": LABELS[int(k)], "noise": NOISE_LEVELS[int(z)]} for k, z in zip(labels, noisy, strict=True)]
    cond, ids = encode(maps, attrs, cfg.size)
    x = torch.from_numpy(np.ascontiguousarray(images, np.float32))[:, None]
    model = cfg.compute.fit(mask_diffusion(cfg.size), DictDataset(image=x, cond=cond, label=ids),
                            steps=cfg.gen_steps, seed=seed)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(maps), n)
    flip = rng.random(n) < 0.5
    new = np.where(flip[:, None, None], maps[pick][:, :, ::-1], maps[pick])
    x = generate_from_maps(model, new, [attrs[i] for i in pick], steps=cfg.gen_sample_steps, seed=seed)
    return x[:, 0].clamp(-1, 1).numpy().astype(np.float32), (new >= 2).astype(np.uint8)


def few_labels_study(cfg: FewLabelsConfig, out: str | os.PathLike,
                     log: Callable[[str], None] = lambda s: None) -> dict:
    """Run every arm with every seed; write few_labels.csv (per seed), the table and JSON."""
    out = Path(out)
    t0 = time.perf_counter()
    cases = phantom_cases(cfg.n_patients, cfg.slices_per_patient, PhantomConfig(size=cfg.size), cfg.data_seed)
    split = patient_split(cases.patient_id, {"pool": 1 - cfg.test_fraction, "test": cfg.test_fraction},
                          cfg.data_seed)
    pool, test = cases.subset(split["pool"]), cases.subset(split["test"])
    rows = []
    for seed in cfg.seeds:
        lab = patient_split(pool.patient_id, {"labelled": cfg.label_fraction,
                                              "unlabelled": 1 - cfg.label_fraction}, seed)
        li, ui = lab["labelled"], lab["unlabelled"]
        if len(li) == 0 or len(ui) == 0:
            raise UserError("too few patients to keep some labelled and some unlabelled")
        sup = None
        for arm in cfg.arms:
            t = time.perf_counter()
            if arm == "all labels":
                net = _train(pool.image, pool.kidney, cfg, seed)
                n_masks = len(pool)
            else:
                if sup is None:
                    sup = _train(pool.image[li], pool.kidney[li], cfg, seed)
                net = sup
                n_masks = len(li)
                if arm == "mask-generated pairs":
                    n_new = max(1, int(round(cfg.gen_pairs * len(li))))
                    g_img, g_mask = mask_generated_pairs(pool.image[li], pool.kidney[li], pool.lesion[li],
                                                         pool.label[li], pool.noisy[li], n_new, cfg, seed)
                    net = _train(np.concatenate([pool.image[li], g_img]), np.concatenate([pool.kidney[li], g_mask]),
                                 cfg, seed)
                if arm == "pseudo-label":
                    probs = predict_probs(sup, pool.image[ui])
                    conf = np.maximum(probs, 1 - probs).reshape(len(ui), -1).mean(1)
                    top = np.argsort(-conf)[: max(1, int(round(cfg.keep * len(ui))))]
                    pseudo = probs_to_masks(sup, probs[top])
                    net = _train(np.concatenate([pool.image[li], pool.image[ui][top]]),
                                 np.concatenate([pool.kidney[li], pseudo]), cfg, seed)
            dice = dice_per_slice(predict_masks(net, test.image), test.kidney)
            rows.append({"arm": arm, "seed": seed, "n_true_masks": n_masks, "dice": float(dice.mean()),
                         "dice_noisy": float(dice[test.noisy].mean()) if test.noisy.any() else float("nan"),
                         "seconds": round(time.perf_counter() - t, 2)})
            log(f"{arm} seed {seed}: Dice {rows[-1]['dice']:.3f}")
    per_seed = pd.DataFrame(rows)
    table = []
    for arm, g in per_seed.groupby("arm", sort=False):
        e = mean_ci(g["dice"].to_numpy())
        table.append({"arm": arm, "n_seeds": len(g), "n_true_masks": int(g["n_true_masks"].mean()),
                      "dice": e.value, "dice_lo": e.low, "dice_hi": e.high, "dice_noisy": float(g["dice_noisy"].mean())})
    for df, name in ((per_seed, "few_labels_per_seed.csv"), (pd.DataFrame(table), "few_labels.csv")):
        with atomic_path(out / name) as tmp:
            df.to_csv(tmp, index=False, float_format="%.4f")
    from genmed.config import to_dict

    result = {"config": to_dict(cfg), "n_pool_slices": len(pool), "n_test_slices": len(test),
              "table": table, "note": MASK_CONDITIONED_NOTE, "seconds": round(time.perf_counter() - t0, 1)}
    write_json(out / "few_labels.json", result)
    return result
