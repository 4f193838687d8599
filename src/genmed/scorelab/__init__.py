"""Score lab: the score-based theory of diffusion models, exact, verified and visible.

Analytic Gaussian mixtures under VE/VP noise (`GaussianMixture`), noising processes
(`NoiseProcess`), score-based samplers (pure functions of a score), denoising vs explicit
score matching (`genmed.scorelab.dsm`) and the manifold experiment (`genmed.scorelab.manifold`).
"""

from genmed.scorelab.mixture import GaussianMixture
from genmed.scorelab.processes import NoiseProcess, alpha, variance
from genmed.scorelab.samplers import (
    annealed_langevin,
    langevin,
    prior_sample,
    probability_flow,
    reverse_sde,
)

__all__ = [
    "GaussianMixture",
    "NoiseProcess",
    "alpha",
    "variance",
    "langevin",
    "annealed_langevin",
    "reverse_sde",
    "probability_flow",
    "prior_sample",
]
