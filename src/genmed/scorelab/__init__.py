"""Score lab: the score-based theory of diffusion models, exact, verified and visible.

Analytic Gaussian mixtures under VE/VP noise (`GaussianMixture`), noising processes
(`NoiseProcess`), score-based samplers (pure functions of a score), denoising vs explicit
score matching (`genmed.scorelab.dsm`) and the manifold experiment (`genmed.scorelab.manifold`).
Names are imported on first use (PEP 562), so `genmed --help` does not load torch.
"""

from __future__ import annotations

from genmed._lazy import lazy_exports

_EXPORTS = {
    ".mixture": ("GaussianMixture",),
    ".processes": ("NoiseProcess", "alpha", "variance"),
    ".samplers": ("annealed_langevin", "langevin", "prior_sample", "probability_flow", "reverse_sde"),
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
