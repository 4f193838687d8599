"""Applications of the generative models: anomaly detection, low-dose denoising, phase
translation, generation from a mask plus attributes, and 3D volumes. Their scores (AUROC,
AUPRO, PSNR/SSIM/MAE in HU, bootstrap CIs) come from `genmed.metrics`.

Names are imported on first use (PEP 562), so `genmed --help` does not pay for torch/MONAI.
"""

from __future__ import annotations

from genmed._lazy import lazy_exports

_EXPORTS = {
    "genmed.apps.anomaly": ("AnomalyConfig", "run_anomaly", "detect"),
    "genmed.apps.denoise": ("DenoiseConfig", "run_denoise", "denoise_file"),
    "genmed.apps.translate": ("TranslateConfig", "run_translate"),
    "genmed.apps.generate_from_mask": ("MaskGenConfig", "run_generate_from_mask",
                                       "train_mask_generator", "generate_pairs", "condition_maps",
                                       "load_mask"),
    "genmed.apps.volumes3d": ("Volumes3DConfig", "run_volumes3d"),
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
