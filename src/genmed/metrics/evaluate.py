"""Every image-set metric between a real and a generated set, with CIs, in one call.

Fidelity (quality) and diversity are reported apart:
- quality: FID, KID, precision, density (feature space of the stated extractor);
- diversity: recall, coverage, intra-set MS-SSIM (pixels), class coverage (extractor's
  classifier head, when it has one);
- memorisation: nearest-training-neighbour audit in pixel space (when a training set is given;
  the real set then serves as the held-out reference).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genmed.errors import UserError
from genmed.metrics.diversity import class_coverage, intra_ms_ssim
from genmed.metrics.features import FeatureExtractor, load_extractor
from genmed.metrics.fid import fid_ci, kid_ci
from genmed.metrics.memorisation import flatten_rms, memorisation_audit
from genmed.metrics.prdc import prdc_ci


@dataclass(frozen=True)
class EvalConfig:
    n_boot: int = 50  # bootstrap resamples for FID (PRDC uses 4x, cheap)
    kid_subset: int = 100  # KID subset size (images)
    kid_subsets: int = 50  # KID subsets
    k: int = 5  # neighbours for precision/recall/density/coverage
    ms_ssim_pairs: int = 200  # random pairs for intra-set MS-SSIM
    level: float = 0.95  # CI level
    seed: int = 0


def evaluate_images(
    real: np.ndarray,
    fake: np.ndarray,
    *,
    extractor=None,
    train: np.ndarray | None = None,
    real_labels: np.ndarray | None = None,
    cfg: EvalConfig = EvalConfig(),
    data: dict | None = None,
) -> dict:
    """Metrics of `fake` against `real`, both (N, 1, H, W) in [-1, 1]; JSON-ready dict.

    `data` ({"source", "modality", "phantom", "fake_modality"}) describes the images for the
    domain check (`genmed.metrics.honesty`). "warnings" lists, one line each, a data domain the
    shipped extractor was not trained on and degenerate (e.g. constant) sets; the metrics of a
    degenerate set carry `"reliable": false` and a `"flag"`.
    """
    from genmed.metrics.features import PHANTOM_EXTRACTOR
    from genmed.metrics.honesty import degenerate_check, domain_check, flag

    ext: FeatureExtractor = load_extractor(extractor)
    real = np.asarray(real, dtype=np.float32)
    fake = np.asarray(fake, dtype=np.float32)
    if real.ndim != 4 or fake.ndim != 4:
        raise UserError(f"real {real.shape} and fake {fake.shape} must be (N, C, H, W) image sets")
    if min(len(real), len(fake)) <= cfg.k:
        raise UserError(f"need more than k={cfg.k} images in each set, got {len(real)} real, "
                        f"{len(fake)} fake; lower --k or use more images (e.g. --real-split all)")
    fr, ff = ext.features(real), ext.features(fake)
    fid_e = fid_ci(fr, ff, n_boot=cfg.n_boot, level=cfg.level, seed=cfg.seed)
    kid_e = kid_ci(fr, ff, subset_size=cfg.kid_subset, n_subsets=cfg.kid_subsets, level=cfg.level, seed=cfg.seed)
    pr = prdc_ci(fr, ff, cfg.k, n_boot=4 * cfg.n_boot, level=cfg.level, seed=cfg.seed)
    domain, warnings = domain_check(ext.name, ext.name == PHANTOM_EXTRACTOR, data, ext.meta)
    degenerate, more = degenerate_check(real, fake, fr, ff, cfg.k)
    warnings += more
    out: dict = {
        "warnings": warnings,
        "domain": domain,
        "degenerate": degenerate,
        "extractor": ext.info(),
        "n_real": len(real),
        "n_fake": len(fake),
        "image_shape_fake": list(fake.shape[1:]),
        "quality": {
            "fid": fid_e.to_dict(),
            "kid": kid_e.to_dict(),
            "precision": pr["precision"].to_dict(),
            "density": pr["density"].to_dict(),
        },
        "diversity": {
            "recall": pr["recall"].to_dict(),
            "coverage": pr["coverage"].to_dict(),
            "intra_ms_ssim_fake": intra_ms_ssim(fake, cfg.ms_ssim_pairs, seed=cfg.seed).to_dict(),
            "intra_ms_ssim_real": intra_ms_ssim(real, cfg.ms_ssim_pairs, seed=cfg.seed).to_dict(),
        },
        "config": cfg.__dict__,
    }
    reasons = [f"degenerate {w} set: {why}" for w, why in degenerate.items() if why]
    if reasons:
        flag({**out["quality"], "recall": out["diversity"]["recall"],
              "coverage": out["diversity"]["coverage"]}, "; ".join(reasons))
    if ext.classify is not None:
        n_cls = len(ext.class_names)
        ref = real_labels if real_labels is not None else ext.predict(real)
        cc = class_coverage(ext.predict(fake), np.asarray(ref, dtype=np.int64), n_cls, ext.class_names)
        out["diversity"]["class_coverage"] = {
            **cc.to_dict(), "reference": "real labels" if real_labels is not None else "classifier on real"
        }
    if train is not None:
        train = np.asarray(train, dtype=np.float32)
        if train.shape[1:] != fake.shape[1:] or real.shape[1:] != fake.shape[1:]:
            raise UserError(
                f"memorisation audit needs equal image shapes: fake {fake.shape[1:]}, "
                f"train {train.shape[1:]}, real {real.shape[1:]}"
            )
        audit = memorisation_audit(
            flatten_rms(fake), flatten_rms(train), flatten_rms(real), space="pixels (RMS, [-1, 1] units)"
        )
        out["memorisation"] = audit.to_dict()
    return out
