"""3D: a diffusion model trained directly on phantom volumes, sampled, shown as orthogonal
slices, with training speed (volumes/s) and peak memory.

The run goes through the one engine (`genmed.train.train`, the same path as
`genmed train --spatial-dims 3`) on `genmed.data.load_training_data(spatial_dims=3)`: MONAI's
`DiffusionModelUNet` with `spatial_dims=3` (Ho et al. 2020 DDPM; Pinaya et al. 2022 for 3D
brain MRI). Peak memory: CUDA `max_memory_allocated` on GPU, else the process's peak resident
set size (`ru_maxrss`, MiB), which includes everything the process has held.
"""

from __future__ import annotations

import resource
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genmed.data.transforms import ABDOMEN_RANGE_HU
from genmed.errors import UserError, check_positive
from genmed.train.fitting import Compute
from genmed.fileio import save_figure, write_json


@dataclass(frozen=True)
class Volumes3DConfig:
    """Settings of the 3D diffusion run."""

    size: int = 32  # voxels per side (D = H = W)
    n_patients: int = 24  # phantom volumes for training
    steps: int = 300
    batch_size: int = 4
    channels: tuple[int, ...] = (16, 32, 32)
    n_samples: int = 4
    sample_steps: int = 20
    seed: int = 0
    compute: Compute = field(default_factory=lambda: Compute(precision="auto"))

    def __post_init__(self) -> None:
        for name in ("size", "n_patients", "steps", "batch_size", "n_samples", "sample_steps"):
            check_positive(name, getattr(self, name))
        if self.size % 2 ** (len(self.channels) - 1):
            raise UserError(f"size={self.size} is not divisible by {2 ** (len(self.channels) - 1)}")


def peak_memory_mib(device: str) -> float:
    """Peak memory (MiB): CUDA allocator peak on GPU, else the process's peak RSS."""
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_volumes3d(cfg: Volumes3DConfig = Volumes3DConfig(), out: str | Path = "runs/apps_volumes3d") -> dict[str, Any]:
    """Train the 3D DDPM into out/run, sample volumes, write volumes3d.json / volumes3d.png and
    the samples as NIfTI (out/sample_k.nii.gz, HU)."""
    torch.manual_seed(cfg.seed)  # weight initialisation: independent of what ran before
    from genmed.data.io import save_nifti
    from genmed.data.transforms import unit_to_hu
    from genmed.train import TrainConfig, load_run, train

    out = Path(out)
    tcfg = TrainConfig(family="diffusion", data="phantom", size=cfg.size, spatial_dims=3,
                       n_patients=cfg.n_patients, steps=cfg.steps, batch_size=cfg.batch_size,
                       recipe="volume", precision=cfg.compute.precision, device=cfg.compute.device,
                       seed=cfg.seed, ckpt_every=cfg.steps, keep_checkpoints=1, sample_n=2,
                       sample_steps=5, log_every=max(1, cfg.steps // 10), out=str(out / "run"),
                       options={"channels": list(cfg.channels),
                                "attention_levels": [False] * len(cfg.channels),
                                "norm_num_groups": 16,
                                # the recorded figures (apps_volumes3d.json) used DDIM
                                "sampler": "ddim"})
    from genmed.models import build_model

    def model_of() -> Any:  # built here: the engine's own build passes num_classes=None
        return build_model("diffusion", spatial_dims=3, size=cfg.size, **tcfg.options)

    res = train(tcfg, model=model_of())
    model, _ = load_run(out / "run", model=model_of(), device=res.device)
    with torch.no_grad():
        vols = model.sample(cfg.n_samples, steps=cfg.sample_steps,
                            generator=torch.Generator(res.device).manual_seed(cfg.seed)).cpu()
    hu = unit_to_hu(vols[:, 0].float().numpy())
    from genmed.train.data import read_data_record

    spacing = tuple(read_data_record(out / "run")["spacing_mm"])  # (z, y, x) mm of the training volumes
    for k, v in enumerate(hu):
        save_nifti(out / f"sample_{k}.nii.gz", v.astype(np.float32), spacing,
                   description="genmed 3D diffusion sample")
    result = {"config": asdict(cfg), "train_volumes_per_s": res.img_per_s,
              "train_voxels_per_s": res.img_per_s * cfg.size**3, "precision": res.precision,
              "device": res.device, "peak_memory_mib": peak_memory_mib(res.device),
              "peak_memory_kind": "cuda allocator" if res.device.startswith("cuda") else "process RSS",
              "final_loss": res.metrics.get("main/loss"),
              "sample_mean_hu": float(hu.mean()), "sample_shape": list(hu.shape)}
    write_json(out / "volumes3d.json", result)
    save_figure(orthogonal_figure(hu, spacing), out / "volumes3d.png")
    return result


def orthogonal_figure(volumes_hu: np.ndarray, spacing_mm: tuple[float, float, float] = (1.0, 1.0, 1.0)):
    """Axial, coronal and sagittal middle slices of each (D, H, W) volume (abdomen window), at
    the true aspect of `spacing_mm` (z, y, x); in the coronal and sagittal planes superior is up
    (slice 0 is the most caudal) and the axes are in mm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genmed.report.planes import orthogonal_planes

    n = len(volumes_hu)
    lo, hi = ABDOMEN_RANGE_HU
    fig, ax = plt.subplots(n, 3, figsize=(7.5, 2.4 * n + 0.6), squeeze=False, layout="constrained")
    for i, v in enumerate(volumes_hu):
        for j, (img, name, extent, origin) in enumerate(orthogonal_planes(v, spacing_mm)):
            im = ax[i, j].imshow(img, cmap="gray", vmin=lo, vmax=hi, origin=origin, extent=extent)
            ax[i, j].tick_params(labelsize=6)
            if i == 0:
                ax[i, j].set_title(name, fontsize=8)
            if i == n - 1:
                ax[i, j].set_xlabel("mm", fontsize=7)
        ax[i, 0].set_ylabel("mm", fontsize=7)
    fig.colorbar(im, ax=ax.ravel().tolist(), fraction=0.04).set_label("HU", fontsize=8)
    fig.suptitle(f"Middle slices of the volumes, W{hi - lo:.0f}/L{(hi + lo) / 2:.0f} HU "
                 "(coronal and sagittal: superior up)", fontsize=9)
    return fig
