"""Generation from a label map plus attributes with the diffusion family (SPADE conditioning).

The map enters every normalisation layer of MONAI's `SPADEDiffusionModelUNet` (Park et al. 2019;
Wang et al. 2022, semantic diffusion) and the attribute pair (kind x noise: 6 classes, plus the
null class of classifier-free guidance) is a class embedding. Train it like any model, on
batches {"image", "cond": one-hot map, "label": attribute id} from `genmed.data.conditions.encode`.
`mask_diffusion` works in pixel space (32-64 px); `mask_ldm` in the latent space of a trained
autoencoder (256 px and up, and 3D volumes: the map is area-averaged onto the latent grid,
`models/latent.py`). Scan noise the autoencoder drops is added after decoding, drawn per axial
slice from one noise power spectrum per dose level (`fit_scan_noise`, `add_scan_noise`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from genmed.data.conditions import CLASSES, NOISE_LEVELS, encode, noise_level
from genmed.data.phantom import LABELS
from genmed.data.transforms import ABDOMEN_WIDTH_HU
from genmed.errors import UserError
from genmed.models.base import GenerativeModel, device_of
from genmed.models.diffusion import DiffusionModel
from genmed.models.latent import LatentDiffusionModel
from genmed.models.map_guidance import weights_by_lesion
from genmed.models.noise_texture import NoiseTexture

N_ATTRIBUTE_CLASSES = len(LABELS) * len(NOISE_LEVELS)  # kind x noise


def mask_diffusion(size: int) -> DiffusionModel:
    """A new SPADE diffusion model for `size`-pixel slices conditioned on map and attributes."""
    from genmed.models.registry import build_model

    return build_model("diffusion", size=size, num_classes=N_ATTRIBUTE_CLASSES,
                       cond_channels=len(CLASSES), cond_kind="spade", channels=(32, 64, 64),
                       attention_levels=(False, False, False))


def mask_ldm(autoencoder, images: torch.Tensor, *, cond_kind: str = "concat", autoencoder_run: str = "",
             generator: torch.Generator | None = None, **options: Any) -> LatentDiffusionModel:
    """A new latent diffusion model on a trained `autoencoder` (`AutoencoderModel`, 2D or 3D),
    latents scaled on `images` (N, 1, *spatial) in [-1, 1], conditioned on the one-hot map, area-averaged
    onto the latent grid and concatenated with the latents (Rombach et al. 2022; "spade": SPADE
    normalisation, about 1.75x the CPU time per training step), and on the attribute pair as a
    class. `options` are further latent UNet fields (`LDMConfig`, e.g. channels)."""
    from genmed.models.latent import latent_diffusion

    return latent_diffusion(autoencoder, images, num_classes=N_ATTRIBUTE_CLASSES,
                            cond_channels=len(CLASSES), cond_kind=cond_kind,
                            autoencoder_run=autoencoder_run, generator=generator, **options)


def check_mask_model(model: GenerativeModel, where: str) -> DiffusionModel | LatentDiffusionModel:
    """`model` if it generates from a label map + attributes (a diffusion or ldm model with
    4 map channels and 6 attribute classes); else UserError naming `where`."""
    cfg = model.config
    if (not isinstance(model, DiffusionModel | LatentDiffusionModel) or cfg.spatial_dims not in (2, 3)
            or getattr(cfg, "cond_channels", 0) != len(CLASSES) or cfg.num_classes != N_ATTRIBUTE_CLASSES):
        raise UserError(f"{where}: not a model that generates from a label map + attributes (needs a "
                        f"2-D or 3-D diffusion or ldm model with cond_channels={len(CLASSES)} and "
                        f"num_classes={N_ATTRIBUTE_CLASSES}; train one with `genmed apps generate-from-mask` "
                        "or benchmarks/apps_generate_from_mask_256.py)")
    return model


@torch.no_grad()
def generate_from_maps(model: DiffusionModel | LatentDiffusionModel, masks: np.ndarray,
                       attributes: Sequence[Mapping[str, Any]], *, steps: int = 20, seed: int = 0,
                       spacing_mm: float | Sequence[float] | None = None,
                       texture: NoiseTexture | None = None, map_guidance: float = 0.0,
                       map_guidance_healthy: float | None = None) -> torch.Tensor:
    """Images (N, 1, *spatial) in [-1, 1] on the CPU for condition maps `masks` (N, *spatial:
    H, W or D, H, W as the model) and `attributes` (N dicts), by DDIM in `steps` steps from
    seeded noise. With `texture`, scan noise of each attribute's "noise" level is drawn from it
    and added after decoding inside the map's body (`genmed.models.noise_texture`; a latent
    model cannot draw it itself). Map guidance (`genmed.models.map_guidance`; 0: off) weighs
    maps with a lesion by `map_guidance` and the others by `map_guidance_healthy` (default:
    the same weight; `weights_by_lesion`)."""
    cond, ids = encode(masks, attributes, model.config.size, spacing_mm, model.config.spatial_dims)
    check_noise_request(attributes, texture, tuple(cond.shape[-2:]))
    weights = weights_by_lesion(cond, map_guidance, map_guidance if map_guidance_healthy is None
                                else map_guidance_healthy)
    dev = device_of(model)
    x = model.sample(len(cond), cond=ids.to(dev), image_cond=cond.to(dev), steps=steps,
                     sampler="ddim", generator=torch.Generator(dev).manual_seed(int(seed)),
                     map_guidance=weights.to(dev)).cpu()
    if texture is None:
        return x
    return add_scan_noise(x, attributes, texture, seed, body=(cond[:, 0] < 0.5).numpy())  # channel 0: air


def check_noise_request(attributes: Sequence[Mapping[str, Any]], texture: NoiseTexture | None,
                        image_shape: tuple[int, ...] | None = None) -> None:
    """UserError if an attribute dict asks for a noise SD ("noise_hu") that `texture` cannot
    draw: no texture, or one fitted without the scans' SDs for that level; or if the texture's
    spectra do not have the images' (H, W) `image_shape`, when given."""
    for a in attributes:
        if "noise_hu" in a and (texture is None or noise_level(a) not in texture.reference_hu):
            raise UserError("noise_hu needs a model whose noise texture was fitted with the scans' noise SDs "
                            "(benchmarks/apps_generate_from_mask_256.py writes one with --model RUN); "
                            "without it the SD cannot be drawn")
    if texture is not None and image_shape is not None and texture.shape != tuple(image_shape):
        raise UserError(f"the noise texture's spectra {texture.shape} do not match the model's "
                        f"{tuple(image_shape)} images")


def add_scan_noise(images: torch.Tensor, attributes: Sequence[Mapping[str, Any]], texture: NoiseTexture,
                   seed: int = 0, body: np.ndarray | torch.Tensor | None = None) -> torch.Tensor:
    """`images` (N, 1, H, W) or (N, 1, D, H, W) in [-1, 1] plus scan noise of each attribute
    dict's "noise" level drawn from `texture` (HU, through the abdomen window; scaled to its
    "noise_hu" SD when given, `NoiseTexture.draw`), clamped to
    [-1, 1] like the data. A volume gets an independent draw in each axial slice: the texture
    is the in-plane NPS, and its slices are uncorrelated (as for slices thicker than the
    reconstruction kernel). With `body` (N, *spatial, bool: the map's body, kidneys and
    lesions) the noise goes inside it only: the air around a patient is -1000 HU, so its noise
    stays far below the window's floor (-160 HU) and a real windowed scan shows none there."""
    per_image = int(np.prod(images.shape[2:-2]))  # axial slices per image: 1 in 2D, D in 3D
    levels = [noise_level(a) for a in attributes for _ in range(per_image)]
    sds = [a.get("noise_hu") for a in attributes for _ in range(per_image)]
    noise_hu = torch.from_numpy(texture.draw(levels, np.random.default_rng(int(seed)), sds)
                                .reshape(images.shape[:1] + images.shape[2:]))
    if body is not None:
        inside = torch.as_tensor(np.asarray(body, dtype=bool))
        if tuple(inside.shape) != tuple(noise_hu.shape):
            raise UserError(f"body mask of shape {tuple(inside.shape)} does not match the images' "
                            f"{tuple(noise_hu.shape)}")
        noise_hu = noise_hu * inside
    return (images + noise_hu[:, None] * (2.0 / ABDOMEN_WIDTH_HU)).clamp(-1, 1)


@torch.no_grad()
def fit_scan_noise(model: LatentDiffusionModel, images: torch.Tensor, levels: Sequence[str],
                   body: np.ndarray, batch: int = 16, slice_difference: bool | None = None,
                   noise_hu: Sequence[float] | None = None) -> NoiseTexture:
    """The scan noise a latent model's autoencoder drops: the NPS, per noise level, of the
    residual (HU) of `images` (N, 1, *spatial) in [-1, 1] minus their reconstructions, inside
    the `body` masks (N, *spatial). Fit it on scans of each level (not necessarily the training
    set); volumes count each axial slice as one field (a 2-D model reconstructs them slice by
    slice). `noise_hu` (N; the scans' noise SD in HU) gives each level a reference SD, so that a
    requested SD can be drawn (`add_scan_noise`).

    The residual also holds the autoencoder's structure error. With `slice_difference` (the
    default for volumes) the fields are the differences of adjacent axial slices' residuals
    over sqrt(2): scan noise is independent from slice to slice and keeps its NPS, while the
    structure error, smooth along z, cancels. This is the subtraction method of CT noise
    measurement (two images of the same object, difference / sqrt(2); AAPM TG-233, 2019).
    Slices reconstructed with overlap carry noise correlated along z, which the difference
    partly cancels too: for such data pass `slice_difference=False`."""
    volumes = images.ndim == 5 and images.shape[2] > 1
    if slice_difference is None:
        slice_difference = volumes
    if slice_difference and not volumes:
        raise UserError("slice_difference needs volumes (N, 1, D, H, W) with at least two axial slices")
    dev = device_of(model) if isinstance(model, GenerativeModel) else torch.device("cpu")
    # a 2-D model reconstructs a volume axial slice by axial slice (`models/slicewise.py`)
    by_slice = images.ndim == 5 and getattr(getattr(model, "config", None), "spatial_dims", 3) == 2
    flat = images.movedim(2, 1).reshape(-1, 1, *images.shape[-2:]) if by_slice else images
    recon = torch.cat([model.decode(model.encode(x.to(dev), sample=False)).cpu() for x in flat.split(batch)])
    if by_slice:
        recon = recon.reshape(images.shape[0], images.shape[2], 1, *images.shape[-2:]).movedim(1, 2)
    residual = ((images - recon)[:, 0] * (ABDOMEN_WIDTH_HU / 2.0)).double().numpy()
    body = np.asarray(body, dtype=bool)
    if slice_difference:
        residual = (residual[:, 1:] - residual[:, :-1]) / np.sqrt(2.0)
        body = body[:, 1:] & body[:, :-1]
    per_image = int(np.prod(residual.shape[1:-2]))
    hw = residual.shape[-2:]
    return NoiseTexture.fit(residual.reshape(-1, *hw), np.repeat(np.asarray(levels, dtype=str), per_image),
                            mask=body.reshape(-1, *hw),
                            noise_hu=None if noise_hu is None else np.repeat(np.asarray(noise_hu, np.float64), per_image))
