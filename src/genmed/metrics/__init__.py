"""Evaluation metrics, each on a stated feature space (see docs/evaluation.md).

Quality vs diversity: FID/KID, precision/recall, density/coverage on a domain feature
extractor; intra-set MS-SSIM and class coverage; memorisation audit; paired PSNR/SSIM/MAE (HU);
mode-collapse metrics on 2-D mixtures; periodic (checkerboard) artefacts in the power spectrum; classification (balanced accuracy, recall, AUROC, AUPRC)
and anomaly scores (image AUROC/AUPRC, pixel Dice, AUPRO); bootstrap, over-seed and Wilson CIs.
Every statistic of the package lives here.

Names are imported lazily (PEP 562) so that `genmed --help` does not load torch.
"""

from __future__ import annotations

from genmed._lazy import lazy_exports

# `fid` and `prdc` share their modules' names, so they are bound eagerly (numpy only); a lazy
# attribute would be shadowed by the submodule once it is imported.
from genmed.metrics.fid import fid
from genmed.metrics.prdc import prdc

_EXPORTS = {
    ".extractor_train": ("ExtractorConfig", "train_extractor", "train_phantom_extractor"),
    ".imagesets": ("read_image_set",),
    ".diversity": ("ClassCoverage", "Diversity", "class_coverage", "intra_ms_ssim"),
    ".stats": ("Estimate", "bootstrap_ci", "mean_ci", "mean_sem", "wilson_interval"),
    ".classification": ("auprc", "auroc", "balanced_accuracy", "class_recall", "confusion"),
    ".anomaly": ("aupro", "auroc_by_group", "best_dice", "image_level", "pixel_level"),
    ".evaluate": ("EvalConfig", "evaluate_images"),
    ".features": ("FeatureExtractor", "PHANTOM_EXTRACTOR", "PhantomCNN", "from_callable", "load_extractor", "load_phantom_cnn", "load_torchscript"),
    ".memorisation": ("MemorisationAudit", "flatten_rms", "memorisation_audit"),
    ".modes": ("ModeMetrics", "mode_metrics", "summarise_seeds"),
    ".prdc": ("PRDC", "prdc_ci"),
    ".spectrum": ("mean_power_spectrum", "periodic_artefact_score", "high_frequency_share"),
    ".paired": ("PairedMetrics", "paired_metrics", "paired_per_image", "psnr", "ssim", "window_hu"),
    ".fid": ("fid_ci", "frechet_distance", "kid", "kid_ci"),
}
__getattr__, __dir__, _lazy_names = lazy_exports(__name__, _EXPORTS)
__all__ = sorted([*_lazy_names, "fid", "prdc"])
