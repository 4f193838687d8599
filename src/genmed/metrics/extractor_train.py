"""Train the domain feature extractor (`PhantomCNN`) on the kidney CT phantom.

Supervision (multi-task, so features carry anatomy, lesions and image quality):
- lesion class of the slice (healthy / benign / malignant), class-weighted cross-entropy;
- auxiliary regression (MSE on z-scored targets): share of pixels of each tissue class and the
  slice's noise level in HU.
Inputs are abdomen-windowed slices in [-1, 1]; half of each batch is shown at 32 px (down then
up-sampled) so the features serve models trained at 32 and at 64 px alike.
Reproducible: the same seed, config and torch thread count give the same weights (checked by
the weights hash recorded in every metric output).

This loop stays outside the training engine on purpose: it defines the frozen reference
extractor `genmed-phantom-cnn-v1`, whose weights hash every FID in the docs names. Moving it
into the engine (fused AdamW, another batch order) would change those weights and every
recorded FID; the next extractor (v2, at clinical resolution) is to be trained by the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from genmed.errors import UserError, check_positive
from genmed.metrics.features import INPUT_SIZE, PHANTOM_EXTRACTOR, PhantomCNN, save_phantom_cnn


@dataclass(frozen=True)
class ExtractorConfig:
    n_patients: int = 300  # phantom patients (8 slices each)
    epochs: int = 15
    batch_size: int = 64
    lr: float = 2e-3  # AdamW learning rate
    width: int = 16  # base channel count of PhantomCNN
    aux_weight: float = 0.5  # weight of the auxiliary regression loss
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_patients", "epochs", "batch_size", "lr", "width"):
            check_positive(name, getattr(self, name))


@dataclass(frozen=True)
class ExtractorData:
    images: np.ndarray  # (N, 1, 64, 64) float32 in [-1, 1]
    labels: np.ndarray  # (N,) int64 in [0, 3)
    aux: np.ndarray  # (N, A) float32 regression targets (any scale)


def window_unit(hu: np.ndarray) -> np.ndarray:
    """HU -> [-1, 1] through the abdomen window (level 40, width 400 HU), float32."""
    from genmed.data.transforms import hu_to_unit

    return np.asarray(hu_to_unit(np.asarray(hu, dtype=np.float32)), dtype=np.float32)


def phantom_extractor_data(n_patients: int, seed: int) -> ExtractorData:
    """Phantom slices resized to 64 px with labels, tissue shares and noise level."""
    from genmed.data.phantom import TISSUES, make_slices

    s = make_slices(n_patients, seed=seed)
    x = torch.from_numpy(window_unit(np.asarray(s.image, dtype=np.float32)))[:, None]
    x = nn.functional.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True)
    tissue = np.asarray(s.tissue)
    ids = sorted(set(TISSUES.values()))
    shares = np.stack([(tissue == t).mean(axis=(1, 2)) for t in ids], axis=1)
    aux = np.concatenate([shares, np.asarray(s.noise_hu, dtype=np.float64)[:, None]], axis=1)
    return ExtractorData(x.numpy(), np.asarray(s.label, dtype=np.int64), aux.astype(np.float32))


def train_extractor(data: ExtractorData, cfg: ExtractorConfig = ExtractorConfig()) -> PhantomCNN:
    """Fit a PhantomCNN on `data` (class + auxiliary losses); returns it in eval mode."""
    x = torch.as_tensor(data.images, dtype=torch.float32)
    y = torch.as_tensor(data.labels, dtype=torch.long)
    a = torch.as_tensor(data.aux, dtype=torch.float32).reshape(len(x), -1)
    if x.ndim != 4 or len(x) != len(y) or len(x) != len(a) or len(x) < 2:
        raise UserError(f"extractor data: images {tuple(x.shape)}, labels {tuple(y.shape)}, aux {tuple(a.shape)} do not match")
    if y.min() < 0 or y.max() > 2:
        raise UserError("extractor data: labels must be in {0, 1, 2}")
    a = (a - a.mean(0)) / a.std(0).clamp_min(1e-6)  # z-score each target
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = PhantomCNN(width=cfg.width, n_aux=a.shape[1])
    # Inverse-frequency class weights: lesion slices are a minority of the phantom.
    freq = torch.bincount(y, minlength=3).double().clamp_min(1)
    class_w = (len(y) / (3 * freq)).float()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    steps = cfg.epochs * -(-len(x) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    model.train()
    for _ in range(cfg.epochs):
        perm = torch.randperm(len(x), generator=gen)
        for s in range(0, len(x), cfg.batch_size):
            idx = perm[s : s + cfg.batch_size]
            xb = x[idx]
            low = torch.rand(len(xb), generator=gen) < 0.5  # show half at 32 px
            if low.any():
                small = nn.functional.interpolate(xb[low], size=(32, 32), mode="bilinear", antialias=True)
                xb = xb.clone()
                xb[low] = nn.functional.interpolate(small, size=xb.shape[-2:], mode="bilinear")
            if torch.rand((), generator=gen) < 0.5:
                xb = xb.flip(-1)
            _, logits, aux = model(xb)
            loss = nn.functional.cross_entropy(logits, y[idx], weight=class_w) + cfg.aux_weight * (
                nn.functional.mse_loss(aux, a[idx])
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


def train_phantom_extractor(out: str, cfg: ExtractorConfig = ExtractorConfig()) -> dict:
    """Train on phantom data from `cfg.seed`, write safetensors to `out`, return a summary
    with the weights hash and the class accuracy on held-out phantom patients."""
    data = phantom_extractor_data(cfg.n_patients, cfg.seed)
    model = train_extractor(data, cfg)
    test = phantom_extractor_data(max(cfg.n_patients // 4, 4), cfg.seed + 10_000)
    with torch.no_grad():
        pred = model.class_head(model.features(torch.as_tensor(test.images))).argmax(1).numpy()
    acc = float((pred == test.labels).mean())
    bal = float(np.mean([(pred[test.labels == c] == c).mean() for c in np.unique(test.labels)]))
    meta = {
        "name": PHANTOM_EXTRACTOR, "width": cfg.width, "n_aux": data.aux.shape[1], "seed": cfg.seed,
        "class_names": "healthy,benign,malignant",
        "trained_on": f"phantom n_patients={cfg.n_patients} epochs={cfg.epochs}",
        "heldout_balanced_accuracy": f"{bal:.3f}",
    }
    digest = save_phantom_cnn(model, out, meta)
    return {
        "path": str(out), "name": PHANTOM_EXTRACTOR, "weights_hash": digest,
        "heldout_accuracy": acc, "heldout_balanced_accuracy": bal, "n_train": len(data.labels),
        "n_heldout": len(test.labels), "config": cfg.__dict__,
    }
