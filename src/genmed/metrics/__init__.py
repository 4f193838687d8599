"""Evaluation metrics, each on a stated feature space (see docs/evaluation.md).

Quality vs diversity: FID/KID, precision/recall, density/coverage on a domain feature
extractor; intra-set MS-SSIM and class coverage; memorisation audit; paired PSNR/SSIM/MAE (HU);
mode-collapse metrics on 2-D mixtures; bootstrap and over-seed CIs.

Names are imported lazily (PEP 562) so that `genmed --help` does not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

# `fid` and `prdc` share their modules' names, so they are bound eagerly (numpy only); a lazy
# attribute would be shadowed by the submodule once it is imported.
from genmed.metrics.fid import fid
from genmed.metrics.prdc import prdc

_WHERE = {
    "ExtractorConfig": "extractor_train",
    "train_extractor": "extractor_train",
    "train_phantom_extractor": "extractor_train",
    "read_image_set": "imagesets",
    "ClassCoverage": "diversity",
    "Diversity": "diversity",
    "Estimate": "stats",
    "EvalConfig": "evaluate",
    "FeatureExtractor": "features",
    "MemorisationAudit": "memorisation",
    "ModeMetrics": "modes",
    "PHANTOM_EXTRACTOR": "features",
    "PRDC": "prdc",
    "PairedMetrics": "paired",
    "PhantomCNN": "features",
    "bootstrap_ci": "stats",
    "class_coverage": "diversity",
    "evaluate_images": "evaluate",
    "fid_ci": "fid",
    "flatten_rms": "memorisation",
    "frechet_distance": "fid",
    "from_callable": "features",
    "intra_ms_ssim": "diversity",
    "kid": "fid",
    "kid_ci": "fid",
    "load_extractor": "features",
    "load_phantom_cnn": "features",
    "load_torchscript": "features",
    "mean_ci": "stats",
    "mean_sem": "stats",
    "memorisation_audit": "memorisation",
    "mode_metrics": "modes",
    "paired_metrics": "paired",
    "prdc_ci": "prdc",
    "psnr": "paired",
    "ssim": "paired",
    "summarise_seeds": "modes",
}

__all__ = sorted([*_WHERE, "fid", "prdc"])


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'genmed.metrics' has no attribute {name!r}")
    return getattr(importlib.import_module(f"genmed.metrics.{_WHERE[name]}"), name)


def __dir__() -> list[str]:
    return __all__
