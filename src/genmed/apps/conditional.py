"""Image-conditioned DDPM: the source image (translation) or a label map (generation from a
mask) steers every denoising step.

Two ways to condition, both on MONAI backbones:
- "concat": the condition's channels are stacked onto x_t at the input of a
  `DiffusionModelUNet` (Saharia et al. 2022, Palette; Lyu & Wang 2022 for CT/MR translation).
- "spade": the label map modulates every normalisation layer of a `SPADEDiffusionModelUNet`
  (Park et al. 2019 SPADE; Wang et al. 2022 semantic diffusion).
Optional class labels (attributes) enter as MONAI class embeddings. Training is the DDPM eps
loss (Ho et al. 2020, Algorithm 1) per sample; sampling reuses the project's stateless samplers
(`genmed.models.samplers`) through a denoiser that closes over the condition.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from genmed.errors import UserError, check_choice
from genmed.models.base import Batch, GenerativeModel, randn
from genmed.models.samplers import get_sampler
from genmed.models.schedules import alpha_bar, broadcast, schedule_from_alpha_bar

CondKind = Literal["concat", "spade"]


class ConditionalDiffusion(GenerativeModel):
    """eps-prediction DDPM on (B, 1, H, W) images given a condition (B, cond_channels, H, W)."""

    family = "cond_diffusion"

    def __init__(self, *, size: int, cond_channels: int, kind: CondKind = "concat",
                 num_classes: int = 0, channels: tuple[int, ...] = (32, 64, 64),
                 num_train_timesteps: int = 1000, spatial_dims: int = 2) -> None:
        super().__init__()
        check_choice("conditioning", kind, ("concat", "spade"))
        if size % 2 ** (len(channels) - 1):
            raise UserError(f"size={size} is not divisible by {2 ** (len(channels) - 1)}")
        self.kind, self.size, self.cond_channels = kind, size, cond_channels
        self.num_classes, self.spatial_dims = num_classes, spatial_dims
        common = dict(spatial_dims=spatial_dims, out_channels=1, channels=channels,
                      attention_levels=(False,) * len(channels), num_res_blocks=1,
                      norm_num_groups=16, num_class_embeds=num_classes or None)
        if kind == "concat":
            from monai.networks.nets import DiffusionModelUNet

            self.net = DiffusionModelUNet(in_channels=1 + cond_channels, **common)
        else:
            from monai.networks.nets import SPADEDiffusionModelUNet

            self.net = SPADEDiffusionModelUNet(in_channels=1, label_nc=cond_channels,
                                               spade_intermediate_channels=32, **common)
        ab = alpha_bar("linear", num_train_timesteps)
        self._ab64 = ab
        self.register_buffer("alpha_bar", ab.float(), persistent=False)

    def _eps(self, x: Tensor, t: Tensor, cond: Tensor, labels: Tensor | None) -> Tensor:
        if self.kind == "concat":
            return self.net(torch.cat([x, cond], 1), timesteps=t, class_labels=labels)
        return self.net(x, timesteps=t, seg=cond, class_labels=labels)

    def loss(self, batch: Batch, phase: str = "main") -> dict[str, Tensor]:
        """Per-sample eps-MSE at t ~ U{0..T-1}; batch["cond"] is the condition."""
        x0, cond = batch["image"], batch["cond"].float()
        labels = batch["label"].long() if self.num_classes else None
        t = torch.randint(0, len(self.alpha_bar), (x0.shape[0],), device=x0.device)
        noise = torch.randn_like(x0)
        ab = broadcast(self.alpha_bar[t], x0)
        eps = self._eps(ab.sqrt() * x0 + (1 - ab).sqrt() * noise, t, cond, labels)
        return {"loss": (eps.float() - noise).pow(2).flatten(1).mean(1)}

    @torch.no_grad()
    def generate(self, cond: Tensor, labels: Tensor | None = None, *, steps: int = 20,
                 generator: torch.Generator | None = None, start: Tensor | None = None,
                 t_start: int | None = None, batch_size: int = 64) -> Tensor:
        """Images (B, 1, H, W) in [-1, 1] for conditions `cond` by DDIM (eta 0) in `steps` steps,
        from pure noise, or (SDEdit) from `start` noised to step `t_start`."""
        if cond.shape[1] != self.cond_channels or tuple(cond.shape[2:]) != (self.size,) * self.spatial_dims:
            raise UserError(f"condition of shape {tuple(cond.shape)} does not fit the model "
                            f"({self.cond_channels} channels, {self.size} px)")
        if self.num_classes and labels is None:
            raise UserError("this model needs attribute labels")
        was = self.training
        self.eval()
        outs = []
        for i in range(0, len(cond), batch_size):
            c = cond[i:i + batch_size].float()
            lab = None if labels is None else labels[i:i + batch_size].long()
            shape = (len(c), 1, *c.shape[2:])
            top = len(self.alpha_bar) - 1 if t_start is None else int(t_start)
            x = randn(shape, generator, c.device)
            if start is not None:
                x = float(self._ab64[top]) ** 0.5 * start[i:i + batch_size] + (1 - float(self._ab64[top])) ** 0.5 * x
            sched = schedule_from_alpha_bar(self._ab64, min(steps, top + 1), top)
            den = lambda xt, t, cond=None, guidance=1.0, c=c, lab=lab: self._eps(xt, t, c, lab)  # noqa: E731
            outs.append(get_sampler("ddim")(den, x, sched, generator=generator).clamp(-1, 1))
        self.train(was)
        return torch.cat(outs)

    def sample(self, n: int, cond: Tensor | None = None, steps: int | None = None,
               generator: torch.Generator | None = None) -> Tensor:
        """`n` images for an empty condition (all zeros; label 0): what the engine's end-of-run
        grid shows. Use `generate` with real conditions."""
        c = torch.zeros((n, self.cond_channels, *(self.size,) * self.spatial_dims),
                        device=self.alpha_bar.device)
        lab = torch.zeros(n, dtype=torch.long, device=c.device) if self.num_classes else None
        return self.generate(c, lab, steps=steps or 10, generator=generator)
