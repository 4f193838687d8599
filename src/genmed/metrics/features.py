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
from genmed.models.encoder import INPUT_SIZE, PhantomCNN, prepare  # noqa: F401 (re-exported)

PHANTOM_EXTRACTOR = "genmed-phantom-cnn-v1"
DOMAIN_EXTRACTOR = "genmed-domain-cnn-v2"  # engine-trained on a data source (extractor_engine.py)
# safetensors metadata copied into `FeatureExtractor.meta` (and so into every metric output)
RECORDED_META = ("seed", "trained_on", "heldout_balanced_accuracy", "source", "modality", "units",
                 "size", "objective", "phantom", "steps", "labelled")
ASSET_PATH = Path(__file__).resolve().parents[1] / "assets" / "phantom_cnn_v1.safetensors"


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
    names = tuple(n for n in meta.get("class_names", "healthy,benign,malignant").split(",") if n)
    try:
        model = PhantomCNN(width=int(meta.get("width", 16)), n_classes=len(names) or 1,
                           n_aux=int(meta.get("n_aux", 1)),
                           input_size=int(meta.get("input_size", INPUT_SIZE)),
                           depth=int(meta["depth"]) if meta.get("depth") else None)
        model.load_state_dict(state)
    except (RuntimeError, ValueError, UserError):
        raise UserError(f"{path}: weights do not match the PhantomCNN architecture") from None
    model.eval()
    return FeatureExtractor(
        name=meta.get("name", PHANTOM_EXTRACTOR),
        weights_hash=state_hash(state),
        fn=model.features,
        classify=(lambda x: model.class_head(model.features(x))) if names else None,
        class_names=names,
        meta={"feature_dim": model.feature_dim, "input_size": model.input_size, "file": path.name,
              **{k: v for k, v in meta.items() if k in RECORDED_META}},
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
