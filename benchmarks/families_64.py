"""Each family at its honest best, phantom 64 px, 5 seeds (issue 14) -> results/families_64.json.

Per seed, one `genmed.compare` run (equal budget in training images seen, same held-out
patients, same domain feature extractor) of five arms: diffusion, the stabilised GAN ("gan":
residual nets, lazy R1, minibatch std, DiffAugment, its own StyleGAN2-style recipe), the VAE
(resize-convolution decoder), and the two baseline GANs ("dcgan": BCE, real 1 / fake 0, as the
source describes; "sngan": hinge + spectral norm, the comparison's GAN before issue 14). Added
per arm: the periodic-artefact score of the samples (the 2-D power spectrum at the stride-8
lattice, `genmed.metrics.spectrum`), like-for-like class shares (the extractor's classifier on
samples vs on held-out real slices), the VAE's ELBO in bits/dim on held-out slices and, at merge,
the high-frequency share of the power spectrum (`high_frequency_share`, a blur measure). Seeds
are then pooled: mean with a t-interval over seeds for every figure. `--arms vae` re-runs one
arm into the existing seed parts after its recipe changed. `--study NAME` trains the named arms
afresh into their own parts (runs/bench_families64_NAME) with changed GAN options
(`--gan-diffaug`, `--gan-ada`, `--gan-d-lr-scale`, `--gan-set KEY=VALUE`), and its merge
(results/families_64_NAME.json) judges the GAN targets against the other arms of
results/families_64.json (same seeds, patients, extractor). The `gan` arm trains by the
comparison's recipe: results/families_64.json's at one rate of 2e-4 for G and D, the recipe
until 2026-12-06; since then at BigGAN's rates (G 5e-5, D 2e-4; benchmarks/families_48k.py).
`--study NAME --gan-lr 2e-4 --gan-d-lr-scale 1` trains the table's recipe again.

    python benchmarks/families_64.py --seeds 0,2,4        # one process per core ...
    python benchmarks/families_64.py --seeds 1,3
    python benchmarks/families_64.py --merge              # -> results/families_64.json, figures
    python benchmarks/families_64.py --study gan_tc --arms gan --gan-diffaug translation,cutout
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from genmed.config import parse_assignments
from genmed.fileio import write_json

if TYPE_CHECKING:
    from genmed.compare import CompareConfig

ROOT = Path(__file__).resolve().parents[1]
PARTS = ROOT / "runs" / "bench_families64"  # scratch (git-ignored): one compare run per seed
ARMS = ("gan", "diffusion", "vae", "dcgan", "sngan")  # the slowest first
STRIDE = 8  # three stride-2 levels in every decoder / generator tail at 64 px
QUALITY = ("fid", "kid", "precision", "density")
DIVERSITY = ("recall", "coverage")


def run_seed(seed: int, budget: int, n_samples: int, threads: int, arms: tuple[str, ...] = ARMS,
             tag: str = "", parts: Path = PARTS, batch: int = 32) -> dict:
    """One comparison at `seed`; its part JSON (metrics.json plus the added figures). With a
    subset of `arms` (a recipe changed after the sweep), those arms are trained again into
    seed<N>/rerun-<arms><tag> and replace their entries (and samples) in the seed's existing part;
    in a study's own `parts` folder they are that seed's whole part."""
    import torch

    from genmed.compare import CompareConfig, compare

    torch.set_num_threads(threads)
    folder = parts / f"seed{seed}"
    fresh = arms == ARMS or parts != PARTS
    out = folder if fresh else folder / f"rerun-{'-'.join(arms)}{tag}"
    cfg = CompareConfig(families=arms, size=64, budget_images=budget, n_samples=n_samples,
                        batch_size=batch, study=(), seed=seed, out=str(out))
    result = compare(cfg, progress=lambda m: print(f"[seed {seed}] {m}", flush=True))
    samples = dict(np.load(out / "samples.npz"))
    result["extra"] = extra = measure_extra(cfg, samples, out / "runs" / "vae")
    if out != folder:  # fold the re-run arms into the seed's part
        part = json.loads((folder / "part.json").read_text())
        old = dict(np.load(folder / "samples.npz"))
        for arm in arms:
            part["families"][arm] = result["families"][arm]
            part["extra"][arm] = extra[arm]
            part.setdefault("reruns", {})[arm] = {"options": result["families"][arm]["options"],
                                                  "run_dir": result["families"][arm]["run_dir"]}
            old[arm] = samples[arm]
        from genmed.fileio import atomic_path

        with atomic_path(folder / "samples.npz") as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, **old)
        result = part
    write_json(folder / "part.json", result)
    return result


def measure_extra(cfg: CompareConfig, samples: dict[str, np.ndarray], vae_run: Path) -> dict:
    """The figures added to a comparison's metrics, per arm of `samples` and for the held-out
    real slices: the periodic-artefact score, like-for-like class shares and, for the "vae" arm
    (its run in `vae_run`), the ELBO in bits/dim on the held-out slices."""
    import torch

    from genmed.compare.runner import load_family, load_splits
    from genmed.metrics.diversity import class_coverage
    from genmed.metrics.features import load_extractor
    from genmed.metrics.spectrum import periodic_artefact_score

    _, real, _ = load_splits(cfg)
    extractor = load_extractor(None)
    real_pred = extractor.predict(real)
    names = extractor.class_names
    extra = {"real": {"artefact_score": periodic_artefact_score(real, STRIDE),
                      "class_share_classifier": list(class_coverage(real_pred, real_pred, len(names),
                                                                    names).data_share)}}
    for arm, fake in samples.items():
        fake = fake.astype(np.float32)
        cc = class_coverage(extractor.predict(fake), real_pred, len(names), names)
        extra[arm] = {"artefact_score": periodic_artefact_score(fake, STRIDE),
                      "class_share_classifier": list(cc.sample_share),
                      "class_tv_vs_real_classifier": cc.total_variation}
    if "vae" in samples:
        vae = load_family("vae", vae_run).model
        with torch.no_grad():
            gen = torch.Generator().manual_seed(cfg.seed)
            bpd = vae.elbo_bits_per_dim(torch.from_numpy(real), n_draws=4, generator=gen)
        extra["vae"]["elbo_bits_per_dim_heldout"] = float(bpd.mean())
    return extra


def _add_sharpness(part: dict, parts: Path) -> None:
    """The high-frequency share of every arm's samples and of the held-out real slices."""
    from genmed.compare import CompareConfig
    from genmed.compare.runner import load_splits
    from genmed.metrics.spectrum import high_frequency_share

    folder = parts / f"seed{part['config']['seed']}"
    _, real, _ = load_splits(CompareConfig(size=64, seed=part["config"]["seed"], out=str(folder)))
    part["extra"]["real"]["hf_share"] = high_frequency_share(real)
    with np.load(folder / "samples.npz") as samples:
        for arm in part["families"]:
            part["extra"][arm]["hf_share"] = high_frequency_share(samples[arm])


def merge(folder: Path = PARTS, others: dict | None = None) -> dict:
    """Pool the seeds: every figure as mean and 95% t-interval over seeds, plus the targets
    (arms missing from a study's parts are taken from `others`, a merged result)."""
    from genmed.metrics.stats import mean_ci

    parts = [json.loads(p.read_text()) for p in sorted(folder.glob("seed*/part.json"))]
    if not parts:
        raise SystemExit(f"no parts in {folder}")
    for part in parts:
        _add_sharpness(part, folder)

    def pooled(values: list[float]) -> dict:
        e = mean_ci(values)
        return {"mean": e.value, "low": e.low, "high": e.high, "per_seed": values}

    arms: dict[str, dict] = {}
    for arm in parts[0]["families"]:
        fam = [p["families"][arm] for p in parts]
        ext = [p["extra"][arm] for p in parts]
        row = {k: pooled([f["quality"][k]["value"] for f in fam]) for k in QUALITY}
        row.update({k: pooled([f["diversity"][k]["value"] for f in fam]) for k in DIVERSITY})
        row["intra_ms_ssim"] = pooled([f["diversity"]["intra_ms_ssim_fake"]["ms_ssim"] for f in fam])
        row["artefact_score"] = pooled([e["artefact_score"] for e in ext])
        row["hf_share"] = pooled([e["hf_share"] for e in ext])
        row["class_tv_vs_real_classifier"] = pooled([e["class_tv_vs_real_classifier"] for e in ext])
        row["class_share_classifier"] = np.mean([e["class_share_classifier"] for e in ext], 0).tolist()
        row["memorisation_share_flagged"] = pooled([f["memorisation"]["share_flagged"] for f in fam])
        row["train_seconds"] = pooled([f["train_seconds"] for f in fam])
        row["sampling_seconds_per_image"] = pooled([f["sampling_seconds_per_image"] for f in fam])
        if arm == "vae":
            row["elbo_bits_per_dim_heldout"] = pooled([e["elbo_bits_per_dim_heldout"] for e in ext])
        row["options"] = fam[0]["options"]
        arms[arm] = row
    real = {"artefact_score": pooled([p["extra"]["real"]["artefact_score"] for p in parts]),
            "hf_share": pooled([p["extra"]["real"]["hf_share"] for p in parts]),
            "intra_ms_ssim": pooled([next(iter(p["families"].values()))["diversity"]["intra_ms_ssim_real"]
                                     ["ms_ssim"] for p in parts]),
            "class_share_classifier": np.mean([p["extra"]["real"]["class_share_classifier"]
                                               for p in parts], 0).tolist()}
    first = parts[0]
    judged = {**(others or {}).get("arms", {}), **arms}
    return {"arms": arms, "real": real, "targets": targets(judged, real),
            "seeds": [p["config"]["seed"] for p in parts], "budget": first["budget"],
            "data": first["data"], "extractor": first["extractor"], "machine": first["machine"],
            "seconds_per_seed": [p["seconds"] for p in parts],
            "config": {k: v for k, v in first["config"].items() if k not in ("seed", "out")}}


def targets(arms: dict, real: dict) -> dict:
    """Issue 14's image targets, each with the figures it is judged on (means over seeds)."""
    m = {arm: {k: v["mean"] for k, v in row.items() if isinstance(v, dict) and "mean" in v}
         for arm, row in arms.items()}
    gan, diff, vae = m["gan"], m["diffusion"], m["vae"]
    best_baseline_precision = max(m["dcgan"]["precision"], m["sngan"]["precision"])
    share_gap = float(np.max(np.abs(np.subtract(arms["gan"]["class_share_classifier"],
                                                real["class_share_classifier"]))))
    return {
        "gan_recall_ge_0.5": {"value": gan["recall"], "met": gan["recall"] >= 0.5},
        "gan_coverage_ge_half_diffusion": {"value": gan["coverage"], "diffusion": diff["coverage"],
                                           "met": gan["coverage"] >= 0.5 * diff["coverage"]},
        "gan_precision_ge_baselines": {"value": gan["precision"], "baseline": best_baseline_precision,
                                       "met": gan["precision"] >= best_baseline_precision},
        "gan_class_shares_within_5_points": {"max_abs_diff": share_gap, "met": share_gap <= 0.05},
        "vae_no_periodic_artefact": {"value": vae["artefact_score"], "real": real["artefact_score"]["mean"],
                                     "met": vae["artefact_score"] <= 1.5 * real["artefact_score"]["mean"]},
        "vae_fid_le_2x_diffusion": {"value": vae["fid"], "diffusion": diff["fid"],
                                    "met": vae["fid"] <= 2 * diff["fid"]},
        "vae_recall_ge_0.5": {"value": vae["recall"], "met": vae["recall"] >= 0.5},
    }


def figures(result: dict, n: int = 6, folder: Path = PARTS, stem: str = "families64",
            labels: dict[str, str] | None = None) -> None:
    """docs/img/<stem>_samples.png: `n` held-out real slices and the first `n` samples of
    every arm at seed `result['seeds'][0]` (its part in `folder`), in HU, abdomen window, full
    size; plus <stem>_precision_recall.png, every arm's precision and recall over seeds."""
    from genmed.apps.common import hu_columns_figure
    from genmed.compare import CompareConfig
    from genmed.compare.runner import load_splits
    from genmed.data.transforms import unit_to_hu
    from genmed.fileio import save_figure

    seed = result["seeds"][0]
    folder = folder / f"seed{seed}"
    _, real, _ = load_splits(CompareConfig(size=64, seed=seed, out=str(folder)))
    pick = np.random.default_rng(seed).choice(len(real), n, replace=False)
    cols = {"real (held-out)": real[pick, 0]}
    with np.load(folder / "samples.npz") as samples:
        for arm in ARMS:
            cols[(labels or LABELS)[arm]] = samples[arm][:n, 0].astype(np.float32)
    cols = {k: unit_to_hu(v) for k, v in cols.items()}
    fig = hu_columns_figure(cols, n=n, panel_in=1.6, row_labels=[f"#{i + 1}" for i in range(n)],
                            title=f"64 px phantom, {result['budget']['amount']:,.0f} training images "
                                  f"per arm, seed {seed}")
    save_figure(fig, ROOT / "docs" / "img" / f"{stem}_samples.png")
    save_figure(precision_recall_figure(result, labels or LABELS), ROOT / "docs" / "img" / f"{stem}_precision_recall.png")


def gan_lr(seed_folder: Path) -> float:
    """The learning rate a seed's `gan` arm trained at (its run config: the recipe's, or `--gan-lr`)."""
    from genmed.train.run import load_config_of

    return load_config_of(seed_folder / "runs" / "gan").lr


def study_figure(result: dict, folder: Path, study: str, n: int = 6) -> None:
    """docs/img/families64_<study>_samples.png: the first `n` samples of the study's arms,
    one column per seed and arm, in HU, abdomen window."""
    from genmed.apps.common import hu_columns_figure
    from genmed.data.transforms import unit_to_hu
    from genmed.fileio import save_figure

    cols = {}
    for seed in result["seeds"]:
        with np.load(folder / f"seed{seed}" / "samples.npz") as samples:
            for arm in result["arms"]:
                cols[f"{LABELS[arm]}, seed {seed}"] = unit_to_hu(samples[arm][:n, 0].astype(np.float32))
    fig = hu_columns_figure(cols, n=n, panel_in=1.6, row_labels=[f"#{i + 1}" for i in range(n)],
                            title=f"64 px phantom, study {study}, GAN options "
                                  + ", ".join(f"{k} {v}" for k, v in result["arms"]["gan"]["options"].items())
                                  + ", lr {:g}".format(gan_lr(folder / f"seed{result['seeds'][0]}")))
    save_figure(fig, ROOT / "docs" / "img" / f"families64_{study}_samples.png")


def precision_recall_figure(result: dict, labels: dict[str, str] | None = None):
    """Precision vs recall of every arm: mean over seeds with its 95% t-interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def bar(e: dict) -> list[list[float]]:  # the interval, clipped to the metric's [0, 1]
        return [[e["mean"] - max(e["low"], 0.0)], [min(e["high"], 1.0) - e["mean"]]]

    fig, ax = plt.subplots(figsize=(7.2, 4.2))
    for arm, r in result["arms"].items():
        p, rc = r["precision"], r["recall"]
        ax.errorbar(rc["mean"], p["mean"], xerr=bar(rc), yerr=bar(p), fmt="o", capsize=3,
                    label=(labels or LABELS)[arm])
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("recall (diversity) ↑")
    ax.set_ylabel("precision (quality) ↑")
    ax.set_title(f"64 px phantom, {result['budget']['amount']:,.0f} training images per arm, "
                 f"{len(result['seeds'])} seeds, mean and 95% t-interval\n"
                 f"k = 5 neighbours in {result['extractor']['name']} features", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()
    return fig


LABELS = {"diffusion": "diffusion", "gan": "GAN, stabilised", "vae": "VAE",
          "dcgan": "DCGAN (baseline)", "sngan": "SNGAN (baseline)"}


def markdown(result: dict) -> str:
    """The docs tables: quality, diversity, artefacts and cost, mean [95% t-interval] over seeds."""
    def cell(e: dict, digits: int = 2) -> str:
        return f"{e['mean']:.{digits}f} [{e['low']:.{digits}f}, {e['high']:.{digits}f}]"

    arms, real = result["arms"], result["real"]
    lines = ["| arm | FID ↓ | KID ↓ | precision ↑ | density ↑ | recall ↑ | coverage ↑ |",
             "|---|---|---|---|---|---|---|"]
    for arm, r in arms.items():
        lines.append(f"| {LABELS[arm]} | {cell(r['fid'])} | {cell(r['kid'], 3)} | {cell(r['precision'])} "
                     f"| {cell(r['density'])} | {cell(r['recall'])} | {cell(r['coverage'])} |")
    header = ("| arm | MS-SSIM within set | high-frequency share | periodic-artefact score (stride 8) "
              "| class shares (healthy / benign / malignant) | TV to real | train s | ms per sample |")
    lines += ["", header, "|---|---|---|---|---|---|---|---|"]
    for arm, r in arms.items():
        shares = " / ".join(f"{v:.2f}" for v in r["class_share_classifier"])
        lines.append(f"| {LABELS[arm]} | {cell(r['intra_ms_ssim'])} | {cell(r['hf_share'], 3)} "
                     f"| {cell(r['artefact_score'])} | {shares} | {cell(r['class_tv_vs_real_classifier'])} "
                     f"| {r['train_seconds']['mean']:.0f} | {1000 * r['sampling_seconds_per_image']['mean']:.1f} |")
    shares = " / ".join(f"{v:.2f}" for v in real["class_share_classifier"])
    lines.append(f"| real (held-out) | {cell(real['intra_ms_ssim'])} | {cell(real['hf_share'], 3)} "
                 f"| {cell(real['artefact_score'])} "
                 f"| {shares} | | | |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--budget-images", type=int, default=12_000)
    ap.add_argument("--n-samples", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--arms", default="", help="re-run only these arms into existing parts")
    ap.add_argument("--rerun-tag", default="", help="suffix of the re-run folders (a second re-run)")
    ap.add_argument("--merge", action="store_true", help="pool the seed parts into the result")
    ap.add_argument("--study", default="", help="a named variant study with its own parts and result")
    ap.add_argument("--gan-diffaug", default=None, help='the "gan" arm\'s DiffAugment policy ("" off)')
    ap.add_argument("--gan-ada", type=float, default=None, help='the "gan" arm\'s ADA target (0 off)')
    ap.add_argument("--gan-d-lr-scale", type=float, default=None,
                    help='the "gan" arm\'s TTUR: D\'s learning rate as a multiple of G\'s')
    ap.add_argument("--gan-set", action="append", default=[], metavar="KEY=VALUE",
                    help='one more option of the "gan" arm (YAML value, repeatable), e.g. pack=2')
    ap.add_argument("--gan-lr", type=float, default=None,
                    help='the "gan" arm\'s learning rate (the generator\'s; D\'s is it x --gan-d-lr-scale)')
    ap.add_argument("--batch", type=int, default=32,
                    help="training batch of the re-run arms (same images seen: steps = budget / batch)")
    args = ap.parse_args()
    if args.study and not args.study.replace("_", "").isalnum():
        raise SystemExit(f"--study {args.study!r}: letters, digits and _ only")
    parts = PARTS.with_name(f"{PARTS.name}_{args.study}") if args.study else PARTS
    if args.merge:
        name = f"families_64_{args.study}.json" if args.study else "families_64.json"
        others = json.loads((ROOT / "benchmarks" / "results" / "families_64.json").read_text()) \
            if args.study else None
        result = merge(parts, others)
        write_json(ROOT / "benchmarks" / "results" / name, result)
        if args.study:
            study_figure(result, parts, args.study)
        else:
            figures(result)
        for arm, row in result["arms"].items():
            print(f"{arm}: FID {row['fid']['mean']:.2f} precision {row['precision']['mean']:.2f} "
                  f"recall {row['recall']['mean']:.2f} coverage {row['coverage']['mean']:.2f} "
                  f"artefact {row['artefact_score']['mean']:.2f}")
        print(json.dumps(result["targets"], indent=1))
        print(markdown(result))
        return
    arms = tuple(a for a in args.arms.split(",") if a) or ARMS
    changed = (args.gan_diffaug, args.gan_ada, args.gan_d_lr_scale, args.gan_lr)
    if (any(v is not None for v in changed) or args.gan_set or args.batch != 32) and not args.study:
        raise SystemExit("--gan-diffaug/--gan-ada/--gan-d-lr-scale/--gan-lr/--gan-set/--batch change the "
                         "recipe: name the --study they belong to")
    from genmed.compare.config import NETWORKS

    if args.gan_diffaug is not None:
        NETWORKS["gan"] = {**NETWORKS["gan"], "diffaug": args.gan_diffaug}
    if args.gan_ada is not None:
        NETWORKS["gan"] = {**NETWORKS["gan"], "ada_target": args.gan_ada}
    if args.gan_d_lr_scale is not None:
        NETWORKS["gan"] = {**NETWORKS["gan"], "d_lr_scale": args.gan_d_lr_scale}
    NETWORKS["gan"] = {**NETWORKS["gan"], **parse_assignments(args.gan_set, "--gan-set")}
    if args.gan_lr is not None:  # the recipe's lr is resolved in TrainConfig: replace it for the gan arm
        from dataclasses import replace

        import genmed.compare.runner as runner

        recipe_config = runner._train_config
        runner._train_config = lambda arm, cfg, steps, out: (
            replace(recipe_config(arm, cfg, steps, out), lr=args.gan_lr) if arm == "gan"
            else recipe_config(arm, cfg, steps, out))
    for seed in (int(s) for s in args.seeds.split(",")):
        run_seed(seed, args.budget_images, args.n_samples, args.threads, arms, args.rerun_tag, parts,
                 args.batch)


if __name__ == "__main__":
    main()
