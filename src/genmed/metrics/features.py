"""Feature extractors for FID/KID/PRDC: the shipped phantom CNN, TorchScript files, callables.

ImageNet Inception weights cannot be downloaded here and fit CT poorly (Kynkaanniemi et al.
2023, "The role of ImageNet classes in Frechet inception distance"), so genmed ships a small
domain CNN (`PhantomCNN`, ~0.1 M parameters, < 0.5 MB safetensors in `genmed/assets/`)
trained on the kidney CT phantom by `genmed.metrics.extractor_train.train_phantom_extractor`
(CLI: `genmed eval train-extractor`). Users may pass their own extractor: a TorchScript file
(`torch.jit.save`) or any Python callable mapping (B, 1, H, W) images in [-1, 1] to (B, F).
Every metric output records the extractor's name and a SHA-256 of its weights
(`weights_hash`), so numbers from different extractors are never compared by mistake.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from genmed.errors import UserError

PHANTOM_EXTRACTOR = "genmed-phantom-cnn-v1"
ASSET_PATH = Path(__file__).resolve().parents[1] / "assets" / "phantom_cnn_v1.safetensors"
INPUT_SIZE = 64  # pixels: every image is resized to 64 x 64 before the CNN


class PhantomCNN(nn.Module):
    """Four conv blocks (3x3 conv, GroupNorm, SiLU, 2x avg-pool), widths w, 2w, 4w, 8w.

    Features: global average pools of blocks 2-4 concatenated (14w = 224 dims for w = 16), so
    both fine texture (noise, blur) and coarse anatomy register. Heads (training only): lesion
    class logits (healthy/benign/malignant) and auxiliary regressions (tissue shares, noise).
    """

    def __init__(self, width: int = 16, n_classes: int = 3, n_aux: int = 0) -> None:
        super().__init__()
        chans = [1, width, 2 * width, 4 * width, 8 * width]
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(chans[i], chans[i + 1], 3, padding=1),
                nn.GroupNorm(min(8, chans[i + 1]), chans[i + 1]),
                nn.SiLU(),
                nn.AvgPool2d(2),
            )
            for i in range(4)
        )
        self.feature_dim = sum(chans[2:])
        self.class_head = nn.Linear(self.feature_dim, n_classes)
        self.aux_head = nn.Linear(self.feature_dim, max(n_aux, 1))

    def features(self, x: Tensor) -> Tensor:
        """(B, 1, H, W) in [-1, 1] -> (B, feature_dim); resized to INPUT_SIZE first."""
        x = prepare(x)
        pooled = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i >= 1:
                pooled.append(x.mean(dim=(2, 3)))
        return torch.cat(pooled, dim=1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        f = self.features(x)
        return f, self.class_head(f), self.aux_head(f)


def prepare(x: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, 1, 64, 64): channel mean, bilinear (antialiased) resize."""
    if x.ndim != 4:
        raise UserError(f"images: expected (B, C, H, W), got {tuple(x.shape)}")
    if x.shape[1] != 1:
        x = x.mean(dim=1, keepdim=True)
    if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
        x = nn.functional.interpolate(
            x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True, align_corners=False
        )
    return x


def state_hash(state: dict[str, Tensor]) -> str:
    """SHA-256 over tensor names and raw float bytes, in sorted-name order."""
    h = hashlib.sha256()
    for name in sorted(state):
        h.update(name.encode())
        h.update(state[name].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


@dataclass
class FeatureExtractor:
    """A named feature map with a weights hash; `classify` (optional) gives class logits."""

    name: str
    weights_hash: str
    fn: Callable[[Tensor], Tensor]
    classify: Callable[[Tensor], Tensor] | None = None
    class_names: tuple[str, ...] = ()
    batch_size: int = 128
    meta: dict = field(default_factory=dict)

    def _run(self, fn: Callable[[Tensor], Tensor], images, what: str) -> np.ndarray:
        x = torch.as_tensor(np.asarray(images, dtype=np.float32))
        if x.ndim == 3:
            x = x[:, None]
        if x.ndim != 4 or len(x) == 0:
            raise UserError(f"images: expected a non-empty (N, C, H, W) batch, got {tuple(x.shape)}")
        outs = []
        with torch.no_grad():
            for s in range(0, len(x), self.batch_size):
                out = fn(x[s : s + self.batch_size])
                out = torch.as_tensor(out)
                if out.ndim != 2 or out.shape[0] != min(self.batch_size, len(x) - s):
                    raise UserError(
                        f"extractor {self.name!r}: {what} must be (B, F), got {tuple(out.shape)}"
                    )
                outs.append(out.float().cpu())
        return torch.cat(outs).double().numpy()

    def features(self, images) -> np.ndarray:
        """(N, F) float64 features of images (N, C, H, W) or (N, H, W) in [-1, 1]."""
        return self._run(self.fn, images, "features")

    def predict(self, images) -> np.ndarray:
        """(N,) predicted class indices (needs `classify`)."""
        if self.classify is None:
            raise UserError(f"extractor {self.name!r} has no classifier head")
        return self._run(self.classify, images, "class logits").argmax(1)

    def info(self) -> dict:
        return {"name": self.name, "weights_hash": self.weights_hash, **self.meta}


def save_phantom_cnn(model: PhantomCNN, path: str | Path, meta: dict[str, str]) -> str:
    """Atomically write the model as safetensors with string metadata; return its hash."""
    from safetensors.torch import save_file

    from genmed.fileio import atomic_path

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={k: str(v) for k, v in meta.items()})
    return state_hash(state)


def load_phantom_cnn(path: str | Path = ASSET_PATH) -> FeatureExtractor:
    """The shipped (or a retrained) phantom CNN from a safetensors file."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: extractor weights not found (run `genmed eval train-extractor`)")
    try:
        state = load_file(str(path))
        with safe_open(str(path), framework="pt") as fh:
            meta = dict(fh.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"{path}: not a safetensors file ({exc})") from None
    width = int(meta.get("width", 16))
    n_aux = int(meta.get("n_aux", 1))
    model = PhantomCNN(width=width, n_aux=n_aux)
    try:
        model.load_state_dict(state)
    except RuntimeError:
        raise UserError(f"{path}: weights do not match the PhantomCNN architecture") from None
    model.eval()
    names = tuple(meta.get("class_names", "healthy,benign,malignant").split(","))
    return FeatureExtractor(
        name=meta.get("name", PHANTOM_EXTRACTOR),
        weights_hash=state_hash(state),
        fn=model.features,
        classify=lambda x: model.class_head(model.features(x)),
        class_names=names,
        meta={"feature_dim": model.feature_dim, "input_size": INPUT_SIZE, "file": path.name,
              **{k: v for k, v in meta.items() if k in ("seed", "trained_on", "heldout_balanced_accuracy")}},
    )


def load_torchscript(path: str | Path) -> FeatureExtractor:
    """A user TorchScript module mapping (B, 1, H, W) in [-1, 1] to (B, F) features."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: TorchScript extractor not found")
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError) as exc:
        raise UserError(f"{path}: not a TorchScript file ({str(exc).splitlines()[0][:80]})") from None
    module.eval()
    return FeatureExtractor(name=f"torchscript:{path.name}", weights_hash=state_hash(module.state_dict()), fn=module)


def from_callable(fn: Callable[[Tensor], Tensor], name: str | None = None) -> FeatureExtractor:
    """Wrap a Python callable; an `nn.Module` is hashed by its weights, a function by its source."""
    if not callable(fn):
        raise UserError(f"extractor {fn!r} is not callable")
    label = name or getattr(fn, "__qualname__", type(fn).__qualname__)
    if isinstance(fn, nn.Module):
        fn.eval()
        digest = state_hash(fn.state_dict())
    else:
        try:
            src = inspect.getsource(fn)
        except (OSError, TypeError):
            src = repr(fn)
        digest = "source:" + hashlib.sha256(src.encode()).hexdigest()
    return FeatureExtractor(name=f"callable:{label}", weights_hash=digest, fn=fn)


def load_extractor(spec: str | Path | Callable | FeatureExtractor | None = None) -> FeatureExtractor:
    """None or "phantom-cnn": shipped CNN; a `.safetensors` file: a retrained phantom CNN;
    another file: TorchScript; a callable: wrapped as is."""
    if isinstance(spec, FeatureExtractor):
        return spec
    if spec is None or spec == "phantom-cnn":
        return load_phantom_cnn(ASSET_PATH)
    if callable(spec):
        return from_callable(spec)
    path = Path(spec)
    if path.suffix == ".safetensors":
        return load_phantom_cnn(path)
    return load_torchscript(path)
