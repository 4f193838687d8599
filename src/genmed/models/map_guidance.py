"""Map guidance: push a mask-conditioned sample towards its map's organs at sampling time.

Classifier-free guidance (Ho & Salimans 2022) extrapolates from an unconditional estimate to a
conditional one; a negative condition in place of the unconditional one (the "negative prompt"
of text-to-image models; negation in composable diffusion, Liu et al. 2022, ECCV) extrapolates
away from what that condition draws. Here the negative condition is the same label map with its
organs erased: the kidney and lesion shares moved into the body channel (`organ_free_map`), a
map the model has seen in training (every slice above and below the kidneys has one). With
weight w,

    eps = eps(x, map) + w * (eps(x, map) - eps(x, organ-free map)),

which amplifies what the model draws *because* of the kidneys and lesions and changes little
far from them, where the two maps agree. w = 0 is plain conditional sampling. It needs no
retraining (no map dropout), at twice the network calls per step. Class-label guidance, if any,
acts inside each of the two estimates as before. w may differ per sample (a 1-D tensor), e.g.
one weight for maps with a lesion and another for maps without (`weights_by_lesion`).

The negative "lesion" (`lesion_free_map`) erases less: a map that holds a lesion loses only the
lesion (its share moves into the kidney), so the guidance amplifies what the lesion adds and
leaves the kidney as the model draws it; a map without a lesion keeps the organ-free negative.
"""

from __future__ import annotations

import torch
from torch import Tensor

from genmed.data.conditions import CLASSES
from genmed.errors import UserError, check_choice
from genmed.models.denoiser import Denoiser

BODY, KIDNEY, LESION = (CLASSES.index(c) for c in ("body", "kidney", "lesion"))
ORGANS = (KIDNEY, LESION)
NEGATIVES = ("organs", "lesion")  # what the negative map erases (negative_map)
# default weights (with a lesion, without) for a map drawn whole: off. On the 256-px benchmark
# (0.25, 0.5) reaches the lesion-kind target but fades malignant masses (recall 0.43 against
# 0.78 real; docs/applications.md, "More steps memorise"): a trade the user should choose
SLICE_MAP_GUIDANCE = (0.0, 0.0)


def check_map_guidance(weight: float | Tensor, name: str = "map_guidance",
                       n: int | None = None) -> float | Tensor:
    """`weight` as a float, or a 1-D tensor of per-sample weights (float32, `n` of them when
    `n` is given); UserError naming `name` unless every weight is finite and >= 0."""
    if isinstance(weight, Tensor):
        if weight.ndim != 1 or (n is not None and len(weight) != n):
            count = "" if n is None else f" ({n})"
            raise UserError(f"{name} must be a number or one weight per sample{count}; "
                            f"got a tensor of shape {tuple(weight.shape)}")
        w = weight.detach().float()
        if not bool((torch.isfinite(w) & (w >= 0)).all()):
            raise UserError(f"{name} {w.tolist()} must be finite numbers >= 0")
        return w
    w = float(weight)
    if not 0.0 <= w < float("inf"):
        raise UserError(f"{name} {weight} must be a finite number >= 0")
    return w


def slice_map_guidance(with_lesion: float | None, without_lesion: float | None) -> tuple[float, float]:
    """The (with a lesion, without) weights for maps drawn whole from a user's two optional weights:
    neither given, `SLICE_MAP_GUIDANCE`; one weight alone serves both kinds of map."""
    if with_lesion is None and without_lesion is None:
        return SLICE_MAP_GUIDANCE
    if with_lesion is None:
        with_lesion = SLICE_MAP_GUIDANCE[0]
    w = check_map_guidance(with_lesion)
    return w, w if without_lesion is None else check_map_guidance(without_lesion)


def is_guided(weight: float | Tensor) -> bool:
    """Whether a checked map-guidance weight (`check_map_guidance`) asks for any guidance."""
    return bool(weight.any()) if isinstance(weight, Tensor) else weight != 0.0


def weights_by_lesion(cond: Tensor, with_lesion: float, without_lesion: float) -> Tensor:
    """(B,) map-guidance weights for the condition maps `cond` (B, len(CLASSES), *spatial):
    `with_lesion` where a map holds a lesion share, `without_lesion` where it does not."""
    has_lesion = cond[:, LESION].flatten(1).sum(1) > 0
    w = check_map_guidance(torch.tensor([with_lesion, without_lesion]))
    return torch.where(has_lesion, w[0], w[1])


def organ_free_map(cond: Tensor) -> Tensor:
    """The condition map `cond` (B, len(CLASSES), *spatial: one-hot, or class shares after area
    averaging onto a latent grid) with its kidney and lesion shares moved into the body channel:
    the same body outline without organs. Shares still sum as before at every pixel."""
    if cond.ndim < 3 or cond.shape[1] != len(CLASSES):
        raise UserError(f"a condition map must be (B, {len(CLASSES)}, *spatial); got {tuple(cond.shape)}")
    out = cond.clone()
    out[:, BODY] = cond[:, BODY] + cond[:, list(ORGANS)].sum(1)
    out[:, list(ORGANS)] = 0
    return out


def lesion_free_map(cond: Tensor) -> Tensor:
    """`cond` (as `organ_free_map`) with each map that holds a lesion share losing only the
    lesion, its share moved into the kidney channel; maps without a lesion get their
    organ-free map."""
    out = organ_free_map(cond)
    has_lesion = cond[:, LESION].flatten(1).sum(1) > 0
    kept = cond[has_lesion].clone()
    kept[:, KIDNEY] += kept[:, LESION]
    kept[:, LESION] = 0
    out[has_lesion] = kept
    return out


def negative_map(cond: Tensor, negative: str = "organs") -> Tensor:
    """The negative condition of map guidance: "organs" (`organ_free_map`) or "lesion"
    (`lesion_free_map`); UserError for anything else."""
    check_choice("map_negative", negative, NEGATIVES)
    return organ_free_map(cond) if negative == "organs" else lesion_free_map(cond)


class MapGuidedDenoiser:
    """eps(map) + w (eps(map) - eps(organ-free map)) from two `Denoiser`s bound to the map and to
    its organ-free version (e.g. `DiffusionModel.denoiser(image_cond=...)` twice); `weight` a
    number or one per sample."""

    def __init__(self, with_map: Denoiser, organ_free: Denoiser, weight: float | Tensor) -> None:
        self.with_map, self.organ_free, self.weight = with_map, organ_free, check_map_guidance(weight)

    def __call__(self, x: Tensor, t: Tensor, *, cond: Tensor | None = None,
                 guidance: float = 1.0) -> Tensor:
        eps = self.with_map(x, t, cond=cond, guidance=guidance)
        if not is_guided(self.weight):
            return eps
        w = self.weight
        if isinstance(w, Tensor):  # (B,) -> (B, 1, ...) against eps
            w = check_map_guidance(w, n=len(eps)).to(eps).view(-1, *[1] * (eps.ndim - 1))
        away = self.organ_free(x, t, cond=cond, guidance=guidance)
        return torch.lerp(away, eps, 1.0 + w)  # away + (1 + w) (eps - away)
