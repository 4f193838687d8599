"""`TrainConfig`: everything one training run needs, as a frozen dataclass.

The same fields are the `genmed train` options and the keys of a `--config` YAML/JSON file;
every run writes its resolved config to RUN_DIR/config.yaml so it can be resumed or repeated
from that file alone.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from genmed.errors import MAX_SEED, UserError, check_choice, check_positive, check_range

# Upper bounds of the numbers that size a network or a buffer, enforced on the command line and
# on every config read back from disk (config.yaml, checkpoint sidecars) before anything is
# allocated: a hostile or corrupt file must not make genmed reserve gigabytes first.
MAX_SIZE = {2: 2048, 3: 512}  # image side in pixels (2D) / voxels (3D)
MAX_VECTOR_SIZE = 65_536  # data_kind="vector": the vector dimension
MODEL_LIMITS = {  # model config field -> largest allowed value (every int of a tuple field)
    "in_channels": 64, "num_classes": 10_000, "channels": 4096, "base_channels": 4096,
    "latent_dim": 65_536, "hidden": 65_536, "depth": 256, "num_res_blocks": 64,
    "num_res_units": 64, "norm_num_groups": 4096, "num_train_timesteps": 100_000,
    "sample_steps": 100_000, "recon_t": 100_000, "pack": 256, "mbstd_group": 4096,
    "max_channels": 4096, "r1_every": 10**6,
    "kl_warmup_steps": 10**9,
}
MAX_SAMPLE_ELEMENTS = 1 << 28  # n * C * size**dims of one sampling call (1 GiB of float32)


def check_model_limits(record: Any, where: str) -> None:
    """Refuse model sizes beyond `MAX_SIZE` / `MODEL_LIMITS` in a family options dict or a
    stored model config (before any network is built)."""
    if not isinstance(record, dict):
        raise UserError(f"{where}: expected a mapping of model options, got {type(record).__name__}")
    dims = record.get("spatial_dims", 2)
    if "size" in record:
        if record.get("data_kind") == "vector":
            high = MAX_VECTOR_SIZE
        else:
            high = MAX_SIZE.get(dims, MAX_SIZE[2]) if isinstance(dims, int) else MAX_SIZE[2]
        _check_int(f"{where}: size", record["size"], high)
    for name in ("teacher", "autoencoder"):  # nested model records (consistency, ldm)
        if isinstance(record.get(name), dict):
            check_model_limits({"spatial_dims": dims, **record[name]}, f"{where}: {name}")
    for name, high in MODEL_LIMITS.items():
        value = record.get(name)
        if value is None:
            continue
        items = value if isinstance(value, (list, tuple)) else [value]
        if isinstance(value, (list, tuple)) and len(value) > 16:
            raise UserError(f"{where}: {name} has {len(value)} entries (at most 16)")
        for item in items:
            _check_int(f"{where}: {name}", item, high, low=0)


def _check_int(name: str, value: Any, high: int, low: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{name}={value!r} must be a whole number")
    check_range(name, value, low, high)


Precision = Literal["auto", "bf16", "fp16", "fp32"]
Device = Literal["auto", "cpu", "cuda"]
Schedule = Literal["cosine", "constant"]
Cond = Literal["none", "label"]


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """One training run. Steps count optimiser steps (one batch through every phase)."""

    family: str = "diffusion"  # a `genmed.models.REGISTRY` name: "diffusion", "gan", "vae", ...
    recipe: str = "default"  # the family's training-recipe preset for every field left None
    data: str = "phantom"  # "phantom", a manifest CSV or a folder of images
    size: int = 32  # image side in pixels (voxels in 3D)
    # mm per model pixel (one number, or z,y,x in 3D / y,x in 2D): own scans are resampled to
    # it (MONAI Spacing) and centre cropped / padded to `size`; None: resized to `size`
    # whatever their spacing. The phantom refuses it (genmed.data.spacing).
    spacing_mm: tuple[float, ...] | None = None
    spatial_dims: int = 2  # 2 (slices) or 3 (volumes)
    in_channels: int = 1  # image channels
    cond: Cond = "none"  # "label": class-conditional on the batch's "label"
    num_classes: int = 3  # classes when cond="label" (phantom: healthy, benign, malignant)
    n_patients: int | None = None  # phantom / data-set size cap (None: the loader's default)
    steps: int = 1000  # optimiser steps in total
    batch_size: int = 32  # global batch (split evenly over DDP processes)
    # Optimiser, schedule and EMA: None takes the value of the family's registry recipe
    # (`genmed.models.recipe(family, recipe)`); the resolved values are saved with the run.
    lr: float | None = None  # peak learning rate (AdamW)
    betas: tuple[float, float] | None = None  # AdamW betas (GANs: (0.5, 0.999))
    weight_decay: float | None = None  # AdamW decoupled weight decay
    warmup: int | None = None  # linear LR warm-up steps (capped at steps // 5 for short runs)
    schedule: Schedule | None = None  # LR after warm-up: cosine decay to 0, or constant
    grad_clip: float | None = None  # max global grad norm per phase (0: off)
    ema_decay: float | None = None  # EMA of weights, used for sampling (0: off: raw weights)
    ema_warmup: bool = True  # decay min(ema_decay, (1 + n) / (10 + n)) after n updates
    precision: Precision = "auto"  # auto: bf16 where the hardware runs it fast, else fp32
    device: Device = "auto"  # auto: CUDA when present, else CPU
    seed: int = 0  # seeds weights, noise and data order
    deterministic: bool = False  # torch.use_deterministic_algorithms(True)
    log_every: int = 10  # steps between metrics.jsonl / TensorBoard records
    sample_every: int = 0  # steps between sample grids (0: only at the end)
    sample_n: int = 16  # images in each sample grid
    sample_steps: int | None = None  # sampler steps for the grids (None: model default)
    ckpt_every: int = 500  # steps between checkpoints (one is always written at the end)
    ckpt_minutes: float = 10.0  # also checkpoint when this much wall time passed (0: steps only)
    keep_checkpoints: int = 2  # newest checkpoints kept on disk
    num_workers: int = 0  # DataLoader worker processes
    compile: bool = False  # torch.compile each network (TorchInductor), in place
    channels_last: bool = False  # channels-last memory format for convolution weights
    out: str = "runs/train"  # run directory
    options: dict[str, Any] = field(default_factory=dict)  # family options for build_model
    # Families built on a trained model (ldm: `Capabilities.builds_on`, genmed.train.stages):
    autoencoder: str | None = None  # ldm: an autoencoder run to reuse (None: train one into OUT/autoencoder)
    autoencoder_steps: int | None = None  # ldm: steps of that stage-one run (None: `steps`)
    init: str | None = None  # a trained run of the same family to start from (genmed.train.warm_start)

    def __post_init__(self) -> None:
        self._resolve_recipe()
        check_choice("spatial_dims", self.spatial_dims, (2, 3))
        check_choice("cond", self.cond, ("none", "label"))
        check_choice("precision", self.precision, ("auto", "bf16", "fp16", "fp32"))
        check_choice("device", self.device, ("auto", "cpu", "cuda"))
        check_choice("schedule", self.schedule, ("cosine", "constant"))
        for name in ("size", "in_channels", "num_classes", "steps", "batch_size", "sample_n",
                     "log_every", "ckpt_every", "keep_checkpoints"):
            check_positive(name, getattr(self, name))
        for name in ("lr",):
            check_positive(name, getattr(self, name))
        for name in ("warmup", "grad_clip", "weight_decay", "sample_every", "num_workers",
                     "ckpt_minutes"):
            check_positive(name, getattr(self, name), allow_zero=True)
        if not isinstance(self.options, dict):
            raise UserError(f"options={self.options!r} must be a mapping of family options")
        check_range("size", self.size, 1, MAX_SIZE[self.spatial_dims])
        self._check_spacing()
        check_model_limits({"in_channels": self.in_channels, "num_classes": self.num_classes,
                            "sample_steps": self.sample_steps, **self.options}, "options")
        for name, low, high in (("steps", 1, 10**9), ("batch_size", 1, 65_536), ("sample_n", 1, 1024),
                                ("num_workers", 0, 256), ("n_patients", 1, 10**6), ("seed", 0, MAX_SEED)):
            if getattr(self, name) is not None:
                check_range(name, getattr(self, name), low, high)
        if not 0.0 <= self.ema_decay < 1.0:
            raise UserError(f"ema_decay={self.ema_decay!r} must be in [0, 1)")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise UserError(f"betas={self.betas!r} must be two numbers in [0, 1)")
        if not isinstance(self.options, dict):
            raise UserError(f"options={self.options!r} must be a mapping of family options")
        self._check_stages()

    def _check_spacing(self) -> None:
        """`spacing_mm` as a tuple of positive finite mm, length 1 or `spatial_dims`; refused
        for the phantom (rendered at its own spacing)."""
        from genmed.data.spacing import PHANTOM_SPACING, check_spacing

        object.__setattr__(self, "spacing_mm", check_spacing(self.spacing_mm, self.spatial_dims))
        if self.spacing_mm is not None and self.data == "phantom":
            raise UserError(PHANTOM_SPACING)

    def _check_stages(self) -> None:
        """Stage options only for a family that builds on another trained model."""
        from genmed.models.registry import capabilities

        given = [k for k in ("autoencoder", "autoencoder_steps") if getattr(self, k) is not None]
        if given and capabilities(self.family).builds_on != "autoencoder":
            raise UserError(f"{', '.join(given)}: only for the ldm family (family={self.family!r})")
        if self.init is not None and capabilities(self.family).builds_on is not None:
            raise UserError(f"init: not for the {self.family} family; reuse a trained stage one "
                            "with --autoencoder RUN")
        if self.autoencoder_steps is not None:
            check_positive("autoencoder_steps", self.autoencoder_steps)
            if self.autoencoder is not None:
                raise UserError("autoencoder_steps trains a new autoencoder; drop it when "
                                "reusing the autoencoder run " + repr(self.autoencoder))

    def _resolve_recipe(self) -> None:
        """Fill the fields left None from the registry recipe; refuse what the family cannot
        do (e.g. `cond="label"` for the VAE) before any training starts."""
        from genmed.models.registry import check_request, recipe

        check_positive("steps", self.steps)
        check_request(self.family, cond=self.cond)
        variant = self.options.get("variant") if isinstance(self.options, dict) else None
        chosen = recipe(self.family, self.recipe, variant if isinstance(variant, str) else None)
        for key, value in chosen.train_options(self.steps).items():
            if getattr(self, key) is None:
                object.__setattr__(self, key, value)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with `changes` applied (validated again)."""
        return dataclasses.replace(self, **changes)


def effective_warmup(cfg: "TrainConfig") -> int:
    """Warm-up steps actually used: `cfg.warmup`, capped at a fifth of the run."""
    return min(cfg.warmup, cfg.steps // 5)
