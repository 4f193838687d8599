"""genmed: deep generative models for medical imaging.

Train diffusion models, GANs and VAEs on CT/MR scans (or the built-in kidney CT phantom),
compare them honestly, use them (augmentation, anomaly detection, denoising, translation,
mask-conditioned generation), analyse a kidney-cancer pipeline's errors, and verify the
score-based theory underneath diffusion.
"""

from genmed.errors import UserError

__version__ = "0.1.0"
__all__ = ["UserError", "__version__"]
