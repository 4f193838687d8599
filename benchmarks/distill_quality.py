"""Few-step students vs their teacher (issue 18): FID of a consistency-distilled student at 1, 2
and 4 steps against the teacher at its default sampler (SDE-DPM-Solver++(2M), 20 steps), on
the same extractor and >= 1,000 samples each, with bootstrap CIs; sampling throughput beside a
GAN generator of the same output size.

Teacher: a pixel diffusion run (MONAI DiffusionModelUNet, the family's default width) trained
through the engine on phantom slices, or a given `--teacher` run (pixel or ldm). Student:
`genmed.train.distill` (consistency distillation, Song et al. 2023, Alg. 2) from the teacher's
EMA weights, on the teacher's data. Reference images: phantom slices of other patients
(another phantom seed). Features: the shipped phantom CNN (64-px input; larger samples are
area-resized to 64 px first, the same for every row, stated in the JSON). Look at the
`--figure` too: at 64 px this extractor scored noisy student blobs as well as the teacher.

    PYTHONPATH=src python benchmarks/distill_quality.py --size 64 --teacher-steps 1200 \
        --distill-steps 500 --n 1000 --fp32-teacher          # results/distill_quality.json
    PYTHONPATH=src python benchmarks/distill_quality.py --size 64 --teacher RUN \
        --workdir DIR --figure docs/img/distill_64_samples.png
    PYTHONPATH=src python benchmarks/distill_quality.py --size 256 --teacher runs/ldm256 \
        --workdir DIR --distill-steps 500 --batch 16 --student-options '{"prediction": "v"}' \
        --checker runs/pipe256 --teacher-ode ddim:16,dpmpp_2m:8 \
        --out benchmarks/results/distill_quality_256.json
    echo "n_patients: 300" > p300.yaml   # the teacher's data: 300 phantom patients
    genmed train --family autoencoder --size 64 --steps 1200 --batch-size 16 --config p300.yaml \
        --out runs/ae64
    genmed train --family ldm --size 64 --autoencoder runs/ae64 --steps 4000 --config p300.yaml \
        --out runs/ldm64
    genmed distill runs/ldm64 --out runs/ldm64-cd --steps 800 --batch-size 32
    genmed pipeline train --size 64 --patients 240 --out runs/pipe64
    PYTHONPATH=src python benchmarks/distill_quality.py --size 64 --teacher runs/ldm64 \
        --student runs/ldm64-cd --checker runs/pipe64 --teacher-ode ddim:16,dpmpp_2m:8 \
        --out benchmarks/results/distill_quality_64_ldm.json
    genmed distill runs/ldm64 --out runs/ldm64-ict --steps 4400 --batch-size 32 \
        --weighting ict --distance pseudo_huber       # results/distill_quality_64_ldm_ict.json

`--teacher-ode` adds rows of the teacher's deterministic samplers: its probability-flow ODE,
which is what consistency distillation copies. `--checker` (a kidney pipeline run) adds
to every row the share of samples in which its segmenter finds kidneys of 0.5-2x the real
median area ("kidney_visible"; "kidney_placed" also asks that 90% of those pixels lie where
kidneys occur in real slices), and the high-frequency share of the power spectrum: checks of
anatomy and noise that the phantom CNN's features miss.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
EXTRACTOR_PX = 64
REFERENCE_SEED = 1  # the phantom seed of the reference slices (training data: seed 0)


def timed_samples(model, n: int, batch: int, seed: int, labels: torch.Tensor | None = None,
                  **kw) -> tuple[np.ndarray, float]:
    """`n` samples in batches of `batch` (class `labels[i]` for sample i of a class-conditional
    model), and the seconds per image (sampling only)."""
    g = torch.Generator().manual_seed(seed)
    out, seconds = [], 0.0
    with torch.no_grad():
        for s in range(0, n, batch):
            cond = labels[s : s + batch] if labels is not None else None
            start = time.perf_counter()
            x = model.sample(min(batch, n - s), cond=cond, generator=g, **kw)
            seconds += time.perf_counter() - start
            out.append(x.float())
    return torch.cat(out).numpy(), seconds / n


def to_extractor(images: np.ndarray) -> np.ndarray:
    """Area-resize to the extractor's 64 px (no-op at 64)."""
    x = torch.as_tensor(images, dtype=torch.float32)
    if x.shape[-1] != EXTRACTOR_PX:
        x = F.interpolate(x, size=(EXTRACTOR_PX, EXTRACTOR_PX), mode="area")
    return x.numpy()


def figure(path: Path, rows: dict[str, np.ndarray], title: str) -> None:
    """One row of slices per sampler (first: real), abdomen window W400/L40 with a HU bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genmed.data.modality import CT_WINDOW

    n = max(len(v) for v in rows.values())
    fig, axes = plt.subplots(len(rows), n, figsize=(1.9 * n + 1.2, 2.0 * len(rows) + 0.6),
                             squeeze=False)
    for r, (name, images) in enumerate(rows.items()):
        for j in range(n):
            ax = axes[r, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j < len(images):
                im = ax.imshow(CT_WINDOW.from_unit(images[j, 0]), cmap="gray", vmin=-160, vmax=240)
        axes[r, 0].set_ylabel(name, fontsize=9)
    fig.colorbar(im, ax=axes, fraction=0.02, label="HU (window W400/L40)")
    fig.suptitle(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def kidney_masks(pipe, images: np.ndarray) -> np.ndarray:
    """(N, H, W) kidney masks the checker pipeline's segmenter finds in each image, at the
    checker's own size (images bilinearly resized to it first, real and generated alike)."""
    x = torch.as_tensor(images, dtype=torch.float32)
    if x.shape[-1] != pipe.cfg.size:
        x = F.interpolate(x, size=(pipe.cfg.size, pipe.cfg.size), mode="bilinear", align_corners=False)
    return np.concatenate([pipe.segment(x[i : i + 50, 0].numpy()) for i in range(0, len(x), 50)]) > 0


def kidney_areas(masks: np.ndarray) -> np.ndarray:
    """(N,) kidney pixels of each mask."""
    return masks.reshape(len(masks), -1).sum(1)


def real_sized(masks: np.ndarray, real_median: float) -> np.ndarray:
    """(N,) whether each mask's kidney area is within [0.5, 2] x the real median."""
    areas = kidney_areas(masks)
    return (areas >= 0.5 * real_median) & (areas <= 2.0 * real_median)


def visible_share(masks: np.ndarray, real_median: float) -> float:
    """Share of images whose segmented kidney area is within [0.5, 2] x the real median: an
    anatomy check that a feature space trained on tissue shares and noise level can miss."""
    return float(real_sized(masks, real_median).mean())


def placed_share(masks: np.ndarray, real_median: float, where: np.ndarray) -> float:
    """`visible_share` with a place too: at least 90% of the segmented kidney pixels lie where
    kidneys occur in real slices (`where`, the union of real masks). A 64-px segmenter finds
    kidney-sized blobs in pure noise; it does not find them in the kidneys' place."""
    inside = kidney_areas(masks & where) >= 0.9 * kidney_areas(masks)
    return float((real_sized(masks, real_median) & inside).mean())


def gan_img_per_s(size: int, variant: str, n: int = 256, repeats: int = 3) -> float:
    """Sampling throughput of a GAN `variant`'s generator at `size` (untrained: speed only)."""
    from genmed.models import build_model

    gan = build_model("gan", size=size, variant=variant).eval()
    best = 0.0
    with torch.no_grad():
        for _ in range(repeats):
            start = time.perf_counter()
            gan.sample(n, generator=torch.Generator().manual_seed(0))
            best = max(best, n / (time.perf_counter() - start))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--teacher", type=Path, help="a trained diffusion/ldm run (skip training one)")
    ap.add_argument("--workdir", type=Path, default=ROOT / "runs" / "bench_distill")
    ap.add_argument("--teacher-steps", type=int, default=2500)
    ap.add_argument("--distill-steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--n-patients", type=int, default=300, help="phantom patients of the teacher's data")
    ap.add_argument("--precision", default="auto", help="auto: bf16 where the CPU runs it natively")
    ap.add_argument("--n", type=int, default=1000, help="samples per row (and reference slices)")
    ap.add_argument("--student-steps", default="1,2,4")
    ap.add_argument("--student", type=Path, help="a distilled run (skip distilling one)")
    ap.add_argument("--student-options", default="{}",
                    help='ConsistencyConfig options as JSON, e.g. \'{"prediction": "v"}\'')
    ap.add_argument("--checker", type=Path, help="a kidney pipeline run (`genmed pipeline train`): "
                    "adds the share of samples in which its segmenter finds kidneys of real size")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n-boot", type=int, default=50)
    ap.add_argument("--fp32-teacher", action="store_true",
                    help="also sample the teacher in fp32 (does bf16 sampling change FID?)")
    ap.add_argument("--teacher-only", action="store_true", help="no student rows")
    ap.add_argument("--teacher-ode", default="ddim:16",
                    help="SAMPLER:STEPS rows of the teacher's deterministic (probability-flow ODE) "
                    "samplers, comma-separated: the trajectories consistency distillation copies")
    ap.add_argument("--figure", type=Path, help="draw 6 samples per row beside real slices here "
                    "and stop (no FID)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "distill_quality.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from genmed.data.datasets import load_training_data
    from genmed.metrics.features import load_extractor
    from genmed.metrics.fid import fid_ci
    from genmed.metrics.spectrum import high_frequency_share
    from genmed.pipeline.pipeline import load_pipeline
    from genmed.train import TrainConfig, train
    from genmed.train.distill import distill
    from genmed.train.precision import resolve_numerics
    from genmed.train.run import load_run
    from genmed.versions import machine

    args.precision = resolve_numerics("cpu", args.precision).precision  # "auto" resolved, recorded

    teacher_run = args.teacher or args.workdir / f"teacher-{args.size}"
    student_run = args.student or args.workdir / f"student-{args.size}"
    timing: dict[str, dict] = {}
    if args.teacher is None and not (teacher_run / "checkpoints").exists():
        cfg = TrainConfig(family="diffusion", size=args.size, n_patients=args.n_patients,
                          steps=args.teacher_steps, batch_size=args.batch, precision=args.precision,
                          device="cpu", ckpt_every=500, sample_n=16, out=str(teacher_run))
        start = time.perf_counter()
        res = train(cfg)
        timing["teacher"] = {"wall_s": round(time.perf_counter() - start, 1), "img_per_s": round(res.img_per_s, 2)}
    if not (student_run / "checkpoints").exists():
        start = time.perf_counter()
        res = distill(teacher_run, student_run, steps=args.distill_steps, batch_size=args.batch,
                      precision=args.precision, options=json.loads(args.student_options))
        timing["student"] = {"wall_s": round(time.perf_counter() - start, 1), "img_per_s": round(res.img_per_s, 2)}

    extractor = load_extractor()
    # reference: patients of another phantom seed (never seen by the teacher), 8 slices each;
    # rendered for n / 6 patients only (1,000 patients at 256 px would need about 20 GiB)
    n_ref_patients = args.n // 6 + 8
    real = load_training_data("phantom", size=args.size, split="all", n_patients=n_ref_patients,
                              seed=REFERENCE_SEED)
    if len(real) < args.n:
        raise SystemExit(f"only {len(real)} reference slices for --n {args.n}")
    real_images = real.images[: args.n].numpy()
    real_feats = extractor.features(to_extractor(real_images))
    checker = None
    if args.checker:
        checker = load_pipeline(args.checker)
        real_masks = kidney_masks(checker, real_images)
        real_median = float(np.median(kidney_areas(real_masks)))
        # where kidneys occur in real slices: half of the reference's masks (the other half
        # gives the real row's own placed share, not scored against itself)
        where = real_masks[::2].any(0)
        anatomy = {"checker": str(args.checker), "real_median_kidney_px": real_median,
                   "real_kidney_visible": visible_share(real_masks, real_median),
                   "real_kidney_placed": placed_share(real_masks[1::2], real_median, where),
                   "real_hf_share": high_frequency_share(real_images)}
    teacher, teacher_cfg = load_run(teacher_run)
    student, student_cfg = load_run(student_run)
    rows: dict[str, dict] = {}
    # a class-conditional teacher draws each sample in the class of its reference slice
    labels = real.labels[: args.n].long() if teacher.config.num_classes else None
    def row(name: str, model, precision: str = args.precision, **kw) -> None:
        with resolve_numerics("cpu", precision).autocast():
            images, s_per_img = timed_samples(model.eval(), args.n, 100, seed=1, labels=labels, **kw)
        est = fid_ci(real_feats, extractor.features(to_extractor(images)), n_boot=args.n_boot)
        rows[name] = {"fid": round(est.value, 3), "ci95": [round(est.low, 3), round(est.high, 3)],
                      "img_per_s": round(1.0 / s_per_img, 2), "precision": precision, **kw}
        if checker is not None:
            masks = kidney_masks(checker, images)
            rows[name]["kidney_visible"] = visible_share(masks, real_median)
            rows[name]["kidney_placed"] = placed_share(masks, real_median, where)
            rows[name]["hf_share"] = round(high_frequency_share(images), 4)
        print(name, rows[name], flush=True)

    tcfg = teacher.config
    ode = [(sampler, int(steps)) for sampler, steps in
           (spec.split(":") for spec in filter(None, args.teacher_ode.split(",")))]
    if args.figure:
        k = 6
        pick = torch.arange(k) * (args.n // k)  # slices of different patients
        lab = labels[pick] if labels is not None else None
        with resolve_numerics("cpu", args.precision).autocast():
            grid = {"real (held out)": real.images[pick].numpy(),
                    f"teacher\n{tcfg.sampler}, {tcfg.sample_steps} steps":
                        timed_samples(teacher.eval(), k, k, seed=1, labels=lab)[0]}
            for sampler, steps in ode:
                grid[f"teacher\n{sampler}, {steps} steps (ODE)"] = timed_samples(
                    teacher.eval(), k, k, seed=1, labels=lab, sampler=sampler, steps=steps)[0]
            for steps in (int(s) for s in args.student_steps.split(",")):
                grid[f"student\n{steps} step{'s' if steps > 1 else ''}"] = timed_samples(
                    student.eval(), k, k, seed=1, labels=lab, steps=steps)[0]
        figure(args.figure, grid, f"Consistency distillation at {args.size} px "
               f"({360 / args.size:.2f} mm/px), same seeds in every row\nteacher: {teacher.family}, "
               f"{teacher_cfg.steps} training steps; student: {student.config.prediction}-prediction, "
               f"{student.config.distance}, {student.config.weighting} weights, "
               f"{student_cfg.steps} distillation steps, sampled in 1, 2, 4 evaluations")
        return
    row(f"teacher {tcfg.sampler}-{tcfg.sample_steps}", teacher)
    if args.fp32_teacher:
        row(f"teacher {tcfg.sampler}-{tcfg.sample_steps} fp32", teacher, precision="fp32")
    for sampler, steps in ode:
        row(f"teacher {sampler}-{steps} (ODE)", teacher, sampler=sampler, steps=steps)
    for k in () if args.teacher_only else (int(s) for s in args.student_steps.split(",")):
        row(f"student {k}-step", student, steps=k)
    teacher_fid = next(iter(rows.values()))["fid"]
    for r in rows.values():
        r["fid_over_teacher"] = round(r["fid"] / teacher_fid, 3)
    gan = {v: round(gan_img_per_s(args.size, v), 1) for v in ("dcgan", "resnet_r1")}
    student_1 = rows.get("student 1-step", {}).get("img_per_s")
    result = {
        "benchmark": "distill_quality",
        "machine": machine() | {"torch_threads": args.threads},
        "settings": {"size": args.size, "teacher_run": str(teacher_run), "student_run": str(student_run),
                     "teacher_steps": teacher_cfg.steps,
                     "teacher_batch": teacher_cfg.batch_size, "distill_steps": student_cfg.steps,
                     "batch": args.batch, "n_patients": teacher_cfg.n_patients, "precision": args.precision,
                     "n_samples": args.n, "reference": f"phantom seed {REFERENCE_SEED} (not the "
                     f"teacher's), {n_ref_patients} patients, first {args.n} slices", "n_boot": args.n_boot,
                     "student": student.config.__class__.__name__, "num_scales": student.config.num_scales,
                     "prediction": student.config.prediction, "distance": student.config.distance,
                     "weighting": student.config.weighting,
                     "teacher_family": student.config.teacher_family,
                     "classes": "the reference slices' labels" if labels is not None else None},
        "extractor": extractor.info() | {"resized_to_px": EXTRACTOR_PX},
        "training": timing,
        "anatomy": anatomy if checker is not None else None,
        "rows": rows,
        "gan_sampling_img_per_s": gan,
        "gan_speed_over_student_1step": {v: round(g / student_1, 2) for v, g in gan.items()}
        if student_1 else None,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
