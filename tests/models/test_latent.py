"""Latent diffusion: the autoencoder compresses an easy data set better than the mean image, the
adversarial term waits for its warm-up, the LDM's latents are scaled and decoded consistently
with a frozen autoencoder, and every sampler (with guidance) samples it, 2D and 3D."""

from __future__ import annotations

import pytest
import torch

from genmed.errors import UserError
from genmed.models import SAMPLERS, LatentCache, build_model, check_request, latent_diffusion
from genmed.train import DictDataset, fit

UNET = dict(channels=(8, 16), attention_levels=(False, False), norm_num_groups=4,
            num_train_timesteps=50, sample_steps=3)
TINY_AE = dict(channels=(4, 4), norm_num_groups=4, latent_channels=2)


def discs(n: int, size: int = 16, seed: int = 0) -> torch.Tensor:
    """(n, 1, size, size): a bright disc (radius ~3.5 px) anywhere on a random grey level, so
    the mean image is a poor reconstruction and a working autoencoder a good one."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    centre = torch.randint(4, size - 4, (n, 2), generator=g)
    background = torch.rand(n, 1, 1, generator=g) * 0.8 - 0.8
    d2 = (yy - centre[:, 0, None, None]) ** 2 + (xx - centre[:, 1, None, None]) ** 2
    return torch.where(d2 <= 12, torch.tensor(0.8), background).float().unsqueeze(1)


@pytest.fixture(scope="module")
def autoencoder():
    """Stage one through the engine: 60 steps on 64 disc images (about 2 s on one thread)."""
    torch.manual_seed(0)
    ae = build_model("autoencoder", size=16, channels=(8, 16), norm_num_groups=4,
                     latent_channels=2, adv_weight=0.0)
    return fit(ae, DictDataset(image=discs(64)), steps=60, recipe="short", lr=3e-3,
               precision="fp32", device="cpu")


def test_autoencoder_reconstructs_better_than_the_mean_image(autoencoder) -> None:
    train, held = discs(64), discs(32, seed=1)
    mse = (autoencoder.reconstruct(held) - held).pow(2).mean()
    baseline = (train.mean(0, keepdim=True) - held).pow(2).mean()
    assert mse < 0.5 * baseline, (float(mse), float(baseline))
    assert autoencoder.anomaly_score(held).shape == (32,)


def test_crop_training_sees_windows_of_each_image_and_tests_on_whole_images() -> None:
    torch.manual_seed(0)
    ae = build_model("autoencoder", size=16, adv_weight=0.0, train_crop=8, **TINY_AE)
    x = torch.arange(2 * 16 * 16, dtype=torch.float32).reshape(2, 1, 16, 16)
    crops = ae._crop(x)
    assert crops.shape == (2, 1, 8, 8)
    for image, crop in zip(x, crops):  # each crop is a contiguous window of its own image
        r, c = divmod(int(crop[0, 0, 0] - image[0, 0, 0]), 16)
        assert torch.equal(crop, image[:, r:r + 8, c:c + 8])
    assert ae(dict(image=x))["rec"] >= 0 and ae.reconstruct(x).shape == x.shape
    ae.eval()
    assert ae._crop(x) is x
    with pytest.raises(UserError, match="divisible"):
        build_model("autoencoder", size=16, adv_weight=0.0, train_crop=7, **TINY_AE)


def test_3d_crop_trained_autoencoder_decodes_in_tiles_of_its_training_crop() -> None:
    """Tiles of the crop's latent side (4 here): the first image voxels along an axis come from
    the first tile alone, so a change at the far end of the latent leaves them unchanged, while
    a whole-volume decode moves them (GroupNorm pools over the whole field). 2-D stays whole."""
    torch.manual_seed(0)
    ae = build_model("autoencoder", spatial_dims=3, size=16, adv_weight=0.0, train_crop=8,
                     **TINY_AE).eval()
    z = torch.randn(1, 2, 8, 8, 8)
    far = z.clone()
    far[:, :, 6:] += 5.0
    with torch.no_grad():
        tiled, tiled_far = ae.decode(z), ae.decode(far)
        whole, whole_far = ae.decode(z, tiled=False), ae.decode(far, tiled=False)
    assert tiled.shape == whole.shape == (1, 1, 16, 16, 16)
    assert torch.allclose(tiled[:, :, :4], tiled_far[:, :, :4], atol=1e-6)
    assert (whole[:, :, :4] - whole_far[:, :, :4]).abs().max() > 1e-3
    assert not torch.allclose(tiled, whole, atol=1e-4)
    flat = build_model("autoencoder", size=16, adv_weight=0.0, train_crop=8, **TINY_AE).eval()
    z2 = torch.randn(1, 2, 8, 8)
    with torch.no_grad():
        assert torch.equal(flat.decode(z2), flat.net.decode(z2).clamp(-1, 1))


def test_3d_crop_trained_autoencoder_encodes_in_windows_of_its_training_crop() -> None:
    """The encoder's twin of the test above: windows of the 8-voxel crop, so the latents of the
    first image voxels come from the first window alone and ignore a change at the far end of
    the volume, which a whole-volume encode (GroupNorm over the whole field) does not."""
    torch.manual_seed(0)
    ae = build_model("autoencoder", spatial_dims=3, size=16, adv_weight=0.0, train_crop=8,
                     **TINY_AE).eval()
    x = torch.rand(1, 1, 16, 16, 16) * 2 - 1
    far = x.clone()
    far[:, :, 12:] = 1.0
    with torch.no_grad():
        (mu, sigma), (mu_far, _) = ae.encode(x), ae.encode(far)
        whole, whole_far = ae.encode(x, tiled=False)[0], ae.encode(far, tiled=False)[0]
    assert mu.shape == sigma.shape == whole.shape == (1, 2, 8, 8, 8)
    assert torch.allclose(mu[:, :, :2], mu_far[:, :, :2], atol=1e-6)
    assert (whole[:, :, :2] - whole_far[:, :, :2]).abs().max() > 1e-3
    assert not torch.allclose(mu, whole, atol=1e-4)
    assert torch.equal(ae.encode(x[..., :8, :8, :8])[0], ae.net.encode(x[..., :8, :8, :8])[0])


def test_adversarial_term_waits_for_its_warm_up() -> None:
    torch.manual_seed(0)
    ae = build_model("autoencoder", size=16, channels=(4, 4), norm_num_groups=4,
                     adv_weight=0.5, adv_warmup_steps=10, disc_layers=2, disc_channels=4)
    assert ae.phases() == ("discriminator", "generator")
    x = discs(4)
    early, late = {"image": x, "step": torch.tensor(9)}, {"image": x, "step": torch.tensor(10)}
    ae.zero_grad()
    ae(early, "discriminator")["loss"].mean().backward()
    assert all(p.grad is None or not p.grad.any() for p in ae.discriminator.parameters())
    ae.zero_grad()
    ae(late, "discriminator")["loss"].mean().backward()
    assert any(p.grad is not None and p.grad.any() for p in ae.discriminator.parameters())
    torch.manual_seed(1)
    before = ae(early, "generator")
    torch.manual_seed(1)  # the same posterior draw: the losses differ by the adversarial term
    after = ae(late, "generator")
    assert "adv" not in before and after["adv"] > 0
    assert torch.allclose((after["loss"] - before["loss"]).mean(), 0.5 * after["adv"], atol=1e-6)


def test_ldm_latents_have_unit_variance_and_decode_with_the_frozen_autoencoder() -> None:
    torch.manual_seed(0)
    autoencoder = build_model("autoencoder", size=16, adv_weight=0.0, **TINY_AE)
    data = discs(64)
    ldm = latent_diffusion(autoencoder, data, generator=torch.Generator().manual_seed(0), **UNET)
    z = ldm.encode(data, torch.Generator().manual_seed(0))  # the draw the scale was set from
    assert abs(float(z.std()) - 1.0) < 1e-4
    assert abs(ldm.config.scale_factor - 1.0) > 0.05  # the raw latents were not unit already
    x = data[:4]
    assert torch.allclose(ldm.decode(ldm.encode(x, sample=False)), autoencoder.reconstruct(x),
                          atol=1e-5)
    assert ldm.diffusion.config.size == 8 and not ldm.diffusion.config.bounded  # 2x latents
    # stage two through the engine moves the diffusion UNet only
    frozen = {k: v.clone() for k, v in ldm.autoencoder.state_dict().items()}
    unet = {k: v.clone() for k, v in ldm.diffusion.state_dict().items()}
    fit(ldm, DictDataset(image=data[:16]), steps=2, recipe="short", batch_size=8,
        precision="fp32", device="cpu")
    assert all(torch.equal(v, ldm.autoencoder.state_dict()[k]) for k, v in frozen.items())
    assert not all(torch.equal(v, ldm.diffusion.state_dict()[k]) for k, v in unet.items())


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_ldm_samples_with_every_sampler_and_guidance(sampler: str) -> None:
    torch.manual_seed(0)
    ldm = build_model("ldm", size=16, num_classes=2, autoencoder=TINY_AE, **UNET)
    with torch.no_grad():  # MONAI zero-initialises the UNet's last conv: make labels matter
        for p in ldm.diffusion.parameters():
            p.add_(0.05 * torch.randn_like(p))
    cond = torch.tensor([0, 1])

    def draw(guidance: float) -> torch.Tensor:
        return ldm.sample(2, cond=cond, steps=3, generator=torch.Generator().manual_seed(1),
                          sampler=sampler, guidance=guidance)

    guided = draw(3.0)
    assert guided.shape == (2, 1, 16, 16) and torch.isfinite(guided).all()
    assert guided.min() >= -1 and guided.max() <= 1
    assert torch.equal(guided, draw(3.0))
    assert not torch.allclose(guided, draw(0.0))  # the guidance scale reaches the latent sampler


def test_ldm_in_3d_samples_and_reconstructs() -> None:
    torch.manual_seed(0)
    ldm = build_model("ldm", spatial_dims=3, size=16, num_classes=2, autoencoder=TINY_AE, **UNET)
    x = ldm.sample(2, cond=torch.tensor([1, 0]), steps=2, sampler="dpmpp_2m_sde", guidance=2.0,
                   generator=torch.Generator().manual_seed(0))
    assert x.shape == (2, 1, 16, 16, 16) and x.abs().max() <= 1
    assert ldm.reconstruct(x, t_start=10, steps=2).shape == x.shape


def test_ldm_refuses_what_it_cannot_do() -> None:
    ldm = build_model("ldm", size=16, autoencoder=TINY_AE, **UNET)
    autoencoder = ldm.autoencoder
    with pytest.raises(UserError, match="unconditional"):
        ldm.sample(2, cond=torch.tensor([0, 1]))
    with pytest.raises(UserError, match="sampler='euler'"):
        ldm.sample(1, sampler="euler")
    with pytest.raises(UserError, match="cannot be conditioned on 'image'"):
        check_request("ldm", cond="image")
    with pytest.raises(UserError, match="options.autoencoder"):
        latent_diffusion(autoencoder, discs(4), autoencoder={"channels": (8, 8)})
    with pytest.raises(UserError, match="size=20 is not divisible by 8"):  # 4x, then 2x
        build_model("ldm", size=20, autoencoder=dict(TINY_AE, channels=(4, 4, 4)), **UNET)
    with pytest.raises(UserError, match="unconditional"):
        autoencoder.sample(2, cond=torch.tensor([0, 1]))


def test_cached_posterior_moments_give_the_loss_of_encoding_each_step() -> None:
    torch.manual_seed(0)
    autoencoder = build_model("autoencoder", size=16, adv_weight=0.0, **TINY_AE)
    data = DictDataset(image=discs(6), label=torch.arange(6) % 3)
    ldm = latent_diffusion(autoencoder, data.tensors["image"], num_classes=3, **UNET)
    cached = LatentCache(data, ldm.autoencoder, batch_size=4)  # two encoder batches
    # what the engine trains on (fresh runs and resumes alike): the cache, built once
    assert isinstance(ldm.training_data(data), LatentCache) and ldm.training_data(cached) is cached
    assert autoencoder.training_data(data) is data
    batch = {k: torch.stack([cached[i][k] for i in range(6)]) for k in cached[0]}
    assert batch["latent_mu"].shape == (6, 2, 8, 8) and (batch["latent_sigma"] > 0).all()
    torch.manual_seed(3)
    encoded = ldm.loss({"image": batch["image"], "label": batch["label"]})["loss"]
    torch.manual_seed(3)
    from_cache = ldm.loss(batch)["loss"]
    torch.testing.assert_close(from_cache, encoded, rtol=1e-4, atol=1e-6)
    torch.manual_seed(4)  # and the draw matters: another seed gives another loss
    assert not torch.allclose(ldm.loss(batch)["loss"], encoded)


def disc_maps(images: torch.Tensor) -> torch.Tensor:
    """One-hot (N, 2, H, W) maps of the bright discs of `discs` images: 0 background, 1 disc."""
    disc = (images > 0.5).float()
    return torch.cat([1 - disc, disc], 1)


@pytest.mark.parametrize("kind", ["concat", "spade"])
def test_mask_conditioned_ldm_area_averages_the_map_onto_the_latent_grid(kind: str) -> None:
    torch.manual_seed(0)
    ldm = build_model("ldm", size=16, autoencoder=TINY_AE, cond_channels=2, cond_kind=kind, **UNET)
    m = torch.zeros(1, 2, 16, 16)
    m[:, 0] = 1
    m[0, :, 3, 5] = torch.tensor([0.0, 1.0])  # one map pixel of class 1
    z = ldm.latent_cond(m, 1)
    assert z.shape == (1, 2, 8, 8)  # the autoencoder halves the side
    assert float(z[0, 1, 1, 2]) == 0.25 and float(z[0, 1].sum()) == 0.25  # its 2 x 2 footprint
    torch.testing.assert_close(z.sum(1), torch.ones(1, 8, 8))
    x = ldm.sample(1, image_cond=m, steps=2, generator=torch.Generator().manual_seed(0))
    assert x.shape == (1, 1, 16, 16) and torch.isfinite(x).all()
    assert ldm.loss({"image": discs(2), "cond": m.repeat(2, 1, 1, 1)})["loss"].shape == (2,)
    with pytest.raises(UserError, match=r"needs an image condition of shape \(1, 2, 16, 16\); got none"):
        ldm.sample(1)
    with pytest.raises(UserError, match="got shape"):
        ldm.sample(1, image_cond=m[:, :, :8, :8])
    with pytest.raises(UserError, match="takes none"):
        build_model("ldm", size=16, autoencoder=TINY_AE, **UNET).sample(1, image_cond=m)


def test_mask_conditioned_ldm_puts_the_disc_where_the_map_says(autoencoder) -> None:
    torch.manual_seed(0)
    data = discs(128, seed=2)
    ldm = latent_diffusion(autoencoder, data, cond_channels=2, channels=(16, 32),
                           attention_levels=(False, False), norm_num_groups=8, sample_steps=10)
    fit(ldm, DictDataset(image=data, cond=disc_maps(data)), steps=300, recipe="short", lr=2e-3,
        batch_size=16, precision="fp32", device="cpu")
    held = discs(16, seed=3)
    maps = disc_maps(held)
    x = ldm.sample(16, image_cond=maps, generator=torch.Generator().manual_seed(0))
    inside = (x * maps[:, 1:]).flatten(1).sum(1) / maps[:, 1].flatten(1).sum(1)
    elsewhere = maps.roll(6, dims=-1)[:, 1:]  # the same disc moved 6 px: not where the map put it
    moved = (x * elsewhere).flatten(1).sum(1) / elsewhere.flatten(1).sum(1)
    assert float(inside.mean()) > float(moved.mean()) + 0.2, (inside.mean(), moved.mean())


def test_ldm_passes_region_loss_weights_to_its_latent_unet() -> None:
    ldm = build_model("ldm", size=16, autoencoder=TINY_AE, cond_channels=2, cond_loss_weights=[0, 4], **UNET)
    assert ldm.diffusion.config.cond_loss_weights == (0.0, 4.0)
    with pytest.raises(UserError, match="one weight per image condition channel"):
        build_model("ldm", size=16, autoencoder=TINY_AE, cond_channels=2, cond_loss_weights=[1], **UNET)


def test_ldm_region_loss_weights_pool_the_pixel_map_onto_the_latent_grid() -> None:
    """A training-only region map at pixel resolution weights the latent loss by its shares in
    each latent pixel's footprint, as the image condition's weights do."""
    ldm = build_model("ldm", size=16, autoencoder=TINY_AE, region_loss_weights=[0, 4], **UNET)
    assert ldm.diffusion.config.region_loss_weights == (0.0, 4.0)
    regions = torch.zeros(2, 2, 16, 16)
    regions[:, 0] = 1
    regions[:, :, 0:2, 0:2] = torch.tensor([0.0, 1.0])[:, None, None]  # a quarter of one footprint
    pooled = ldm.to_latent_grid(regions)
    k = 16 // pooled.shape[-1]
    assert pooled.shape[-2:] == (16 // k, 16 // k) and float(pooled[0, 1, 0, 0]) == 4 / k**2
    seen = {}
    real_loss = ldm.diffusion.loss

    def spy(batch):
        seen["regions"] = batch["regions"]
        return real_loss(batch)

    ldm.diffusion.loss = spy
    ldm.loss({"image": torch.rand(2, 1, 16, 16) * 2 - 1, "regions": regions})
    torch.testing.assert_close(seen["regions"], pooled)
    with pytest.raises(UserError, match=r"batch\['regions'\] of shape \(2, 2, 16, 16\); got shape \(2, 2, 8, 8\)"):
        ldm.loss({"image": torch.rand(2, 1, 16, 16), "regions": regions[..., :8, :8]})
