"""`compare(cfg)`: train or load each family, sample, measure; write report.html, metrics.json
and samples.npz (every arm's measured samples).

    from genmed.compare import CompareConfig, compare
    result = compare(CompareConfig(families=("diffusion", "gan", "vae"), out="runs/compare"))

Every family gets the same compute budget (`CompareConfig.budget`, stated in the outputs), is
sampled `n_samples` times from a seeded generator, and is measured by `genmed.metrics` against
held-out real images (patients never used in training): quality (FID, KID, precision, density)
and diversity (recall, coverage, intra-set MS-SSIM) apart, each with a CI, on the stated
feature extractor; plus the memorisation audit against the training images. A diffusion family
also gets the sampler study (`genmed.compare.samplers`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from genmed.compare.config import CompareConfig
from genmed.compare.runner import FamilyRun, autocast, load_family, load_splits, sample_family, train_family
from genmed.config import to_dict


def compare(cfg: CompareConfig, progress: Callable[[str], None] | None = None) -> dict:
    """Run the comparison `cfg` describes; return the metrics.json content (also written)."""
    from genmed.fileio import write_json
    from genmed.metrics.evaluate import EvalConfig, evaluate_images
    from genmed.metrics.features import load_extractor
    from genmed.versions import machine

    say = progress or (lambda _msg: None)
    out = Path(cfg.out)  # created by the first write: a refusal before it leaves nothing
    t_start = time.perf_counter()
    say("data")
    train_ds, real, real_labels = load_splits(cfg)
    train_images = train_ds.images.numpy()
    from genmed.train.precision import resolve_numerics

    device = resolve_numerics(cfg.device, cfg.precision).device
    runs: list[FamilyRun] = []
    for i, family in enumerate(cfg.families):
        say(f"{'load' if cfg.runs else 'train'} {family}")
        runs.append(load_family(family, cfg.runs[i], device=str(device)) if cfg.runs
                    else train_family(family, cfg, train_ds))
    extractor = load_extractor(None)
    n_real = len(real)
    eval_cfg = EvalConfig(n_boot=cfg.n_boot, seed=cfg.seed,
                          kid_subset=min(100, cfg.n_samples, n_real),
                          ms_ssim_pairs=20 if cfg.quick else 200)
    families: dict[str, dict] = {}
    samples: dict[str, np.ndarray] = {}
    for run in runs:
        say(f"sample + measure {run.family}")
        fake, sec = sample_family(run, cfg.n_samples, cfg.seed, cfg.precision)
        samples[run.family] = fake
        metrics = evaluate_images(real, fake, extractor=extractor, train=train_images,
                                  real_labels=real_labels, cfg=eval_cfg)
        families[run.family] = {
            "run_dir": str(run.run_dir), "steps": run.steps, "images_seen": run.images_seen,
            "train_seconds": run.train_seconds, "train_img_per_s": run.img_per_s,
            "options": run.options, "sampling_seconds_per_image": sec,
            "sampler": _sampler_name(run), **{k: v for k, v in metrics.items()
                                               if k in ("quality", "diversity", "memorisation")},
        }
    extractor_info = extractor.info()
    study = None
    diffusion = next((r for r in runs if r.family == "diffusion"), None)
    if diffusion is not None and cfg.study:
        from genmed.compare.samplers import sampler_study

        say("sampler study")
        study = sampler_study(diffusion.model, extractor.features(real), extractor, cfg.study,
                              cfg.study_n, seed=cfg.seed, n_boot=cfg.n_boot,
                              autocast=lambda: autocast(cfg.precision, device.type))
    kind, amount = cfg.budget
    result = {
        "budget": {"kind": kind, "amount": amount, "statement": _budget_statement(kind, amount, cfg)},
        "data": {"source": cfg.data, "size": cfg.size, "n_patients": cfg.n_patients,
                 "n_train_images": len(train_images), "n_real_heldout": n_real,
                 "heldout": "validation + test patients (never trained on)"},
        "extractor": extractor_info,
        "families": families,
        "sampler_study": study,
        "config": to_dict(cfg),
        "machine": machine(),
        "seconds": None,
    }
    from genmed.compare.report import write_report

    say("report")
    write_report(result, real, samples, train_images, out)
    _save_samples(out / "samples.npz", samples)
    result["seconds"] = round(time.perf_counter() - t_start, 1)
    write_json(out / "metrics.json", result)
    return result


def _save_samples(path: Path, samples: dict[str, np.ndarray]) -> None:
    """Every arm's measured samples, (N, 1, H, W) float16 in [-1, 1], for later audits."""
    from genmed.fileio import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **{arm: x.astype(np.float16) for arm, x in samples.items()})


def _sampler_name(run: FamilyRun) -> str:
    cfg = run.model.config
    if run.family == "diffusion":
        return f"{cfg.sampler}, {cfg.sample_steps} steps"
    if run.family == "vae":
        return ("decoder at z ~ the fitted Gaussian of the aggregate posterior"
                if getattr(cfg, "prior", "standard") == "fitted" else "decoder at z ~ N(0, I)")
    return "one forward pass"


def _budget_statement(kind: str, amount: float, cfg: CompareConfig) -> str:
    if cfg.runs:
        return "loaded existing runs (--runs): budgets as trained, see images_seen per family"
    if kind == "images":
        return (f"equal training images seen: {int(amount)} per family "
                f"({int(amount) // cfg.batch_size} steps of batch {cfg.batch_size})")
    return (f"equal training wall-clock: {amount:g} s per family (steps from a measured "
            "8-step probe; actual seconds in train_seconds)")
