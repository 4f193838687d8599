"""Scarce-malignant augmentation study on native-resolution kidney crops (issue 15).

The source's error analysis ends with "work on the malignant class, with more data and
augmentation". This study asks whether generated data is that data, where it can show
something: the lesion classifier sees one kidney per crop at the source spacing
(`crop` x `crop` px cut from `size`-px slices; 64 px at 256 = 90 mm, 1.41 mm/px, so a 6-36 mm
lesion spans 4-26 px), and the malignant class is made scarce: `malignant_crops` malignant
training crops (whole malignant patients added in a seeded order, the last one truncated)
beside several hundred healthy and benign crops.

Arms, each trained with every seed on the same scarce set and scored on the same held-out
test patients (default class mix, another phantom seed):
- real: plain cross-entropy, flips;
- reweight: class-balanced cross-entropy (weights n / (K n_k), sklearn's "balanced");
- classic: plain cross-entropy + MONAI random affine, intensity shift and noise;
- oversample x<r>: real + r x `malignant_crops` copies of the real malignant crops (cycled;
  flipped at random like every batch), plain cross-entropy: the control that tells new
  images from a heavier malignant label;
- <family> x<r>: real + r x `malignant_crops` synthetic malignant crops from a generator
  trained on the same scarce crops (class-conditional pixel and latent diffusion and GAN; the
  VAE is unconditional and trained on the malignant crops alone), plain cross-entropy.
`baselines` drops reweight and/or classic (real always runs: every difference is against it).

Reported per arm: malignant recall, balanced accuracy and AUROC (malignant vs rest), mean
and 95% t-interval over seeds; and the difference in malignant recall from "real" with a 95%
percentile-bootstrap CI over test patients (of the mean over seeds), whose half-width gives
the smallest effect the study can detect (`mde`, 80% power: 2.8 x the bootstrap SE). The
same figures after moving each arm's classifier to a uniform class prior
(`prior_corrected_table`, Saerens et al. 2002) tell new images from a heavier label. Each
generator's samples are audited for memorisation against the malignant training crops and
scored by an "oracle" classifier trained on all real training crops (no scarcity; a DenseNet
twice as wide as the arms': test balanced accuracy 0.84 against their 0.78,
`benchmarks/pipeline_crop_classifier.py`): the share it classes malignant says whether the synthetic crops look malignant at all.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from genmed.config import to_dict
from genmed.data.augment import AugmentKind
from genmed.data.phantom import LABELS, PhantomConfig
from genmed.errors import UserError
from genmed.fileio import atomic_path, write_json
from genmed.metrics.stats import bootstrap_ci
from genmed.models.classifier import balanced_weights
from genmed.pipeline.augment import METRICS, class_metrics, plot_table, summarise, write_tables
from genmed.pipeline.cases import Cases, phantom_cases
from genmed.pipeline.prior_shift import class_prior, prior_corrected
from genmed.pipeline.synthetic import SyntheticSource, memorisation
from genmed.train.fitting import Compute

MALIGNANT = LABELS.index("malignant")
GENERATOR_OPTIONS: dict[str, dict] = {  # each family's recipe for small medical sets (issue 14)
    "diffusion": {"sampler": "ddim"},
    # latent diffusion (Rombach et al. 2022): its autoencoder trained on 32-px random crops
    # (4x fewer pixels per step; convolutional, so it encodes whole crops), then the UNet on
    # the 4x-downsampled latents; sampled like the pixel model
    "ldm": {"sampler": "ddim", "autoencoder": {"train_crop": 32}},
    "gan": {"variant": "resnet_r1"},
    "vae": {"likelihood": "learned"},
}


@dataclass(frozen=True)
class CropStudyConfig:
    """Study settings (pixels, patients, crops, epochs, steps)."""

    size: int = 256  # slice size the crops are cut from (px over the 360 mm field)
    crop: int = 64  # crop side (px, at the slice's spacing)
    n_patients: int = 200  # training patients before the malignant class is made scarce
    n_test_patients: int = 120
    slices_per_patient: int = 8
    malignant_crops: int = 32  # malignant training crops kept
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    ratios: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)  # synthetic : real malignant crops
    epochs: int = 30  # classifier passes over the (real + synthetic) crops
    batch_size: int = 64
    families: tuple[str, ...] = ("diffusion", "gan", "vae")
    gen_steps: int = 1000  # optimiser steps per generator
    gen_batch: int = 32
    sample_steps: int | None = 50  # diffusion sampling steps (None: the model's default)
    data_seed: int = 200  # training phantom seed; the test phantom uses data_seed + 1
    oracle_width: tuple[int, int] = (32, 16)  # oracle DenseNet: stem features, growth rate
    oversample: bool = True  # also arms of real + r x copies of the real malignant crops
    fidelity_n: int = 64  # crops generated per class for the oracle's class-fidelity audit
    baselines: tuple[str, ...] = ("reweight", "classic")  # besides "real" (always run: the reference)
    compute: Compute = field(default_factory=lambda: Compute(precision="auto"))

    def __post_init__(self) -> None:
        if not 8 <= self.crop <= self.size:
            raise UserError(f"crop={self.crop} must be between 8 and the slice size {self.size}")
        if self.malignant_crops < 2 or len(self.seeds) < 1 or self.epochs < 1:
            raise UserError("the crop study needs >= 2 malignant crops, >= 1 seed and >= 1 epoch")
        if any(r <= 0 for r in self.ratios):
            raise UserError(f"ratios {self.ratios} must be > 0")
        if self.fidelity_n < 1:
            raise UserError(f"fidelity_n={self.fidelity_n} crops per class must be >= 1")
        if len(self.oracle_width) != 2 or min(self.oracle_width) < 1:
            raise UserError(f"oracle_width={self.oracle_width} must be (stem features, growth rate) >= 1")
        if self.n_patients < 2 or self.n_test_patients < 2:
            raise UserError("the crop study needs >= 2 training and >= 2 test patients")
        for arm in self.baselines:
            if arm not in ("reweight", "classic"):
                raise UserError(f"baseline arm {arm!r}: choose from reweight, classic")
        for fam in self.families:
            if fam not in GENERATOR_OPTIONS:
                raise UserError(f"generator family {fam!r}: choose from {', '.join(GENERATOR_OPTIONS)}")
        if "ldm" in self.families:  # the crop must fit the autoencoder and the latent UNet
            from genmed.models.latent import LDMConfig

            try:
                LDMConfig(size=self.crop, num_classes=len(LABELS), **GENERATOR_OPTIONS["ldm"])
            except UserError as e:
                raise UserError(f"the ldm generator does not fit crop={self.crop} px: {e}") from None


def quick_crop_study_config(**overrides) -> CropStudyConfig:
    """Test-suite settings: 64-px slices, 24-px crops, 2 seeds, tiny generators."""
    base = dict(size=64, crop=24, n_patients=24, n_test_patients=12, slices_per_patient=6,
                malignant_crops=6, seeds=(0, 1), ratios=(1.0,), epochs=3, gen_steps=4, gen_batch=8,
                sample_steps=4, oracle_width=(16, 8), fidelity_n=4, compute=Compute(precision="fp32"))
    return CropStudyConfig(**{**base, **overrides})


@dataclass
class CropSet:
    """N single-kidney crops: images (N, c, c) in [-1, 1], label (N,), patient id and side (N,),
    the crop's kidney mask (N, c, c; uint8, lesion included) and its lesion area (N,; mm^2)."""

    image: np.ndarray
    label: np.ndarray
    patient_id: np.ndarray
    side: np.ndarray
    kidney: np.ndarray
    lesion_mm2: np.ndarray

    def __len__(self) -> int:
        return len(self.label)

    def subset(self, index: np.ndarray) -> CropSet:
        i = np.asarray(index, np.int64)
        return CropSet(**{f.name: getattr(self, f.name)[i] for f in fields(self)})

    def counts(self) -> dict[str, int]:
        return {name: int((self.label == k).sum()) for k, name in enumerate(LABELS)}


def kidney_crop_set(cases: Cases, crop: int, slice_gap_mm: float) -> CropSet:
    """One crop per kidney side and slice showing that kidney (`genmed.data.crops`: one window
    per side over the patient's slices, at the source spacing). A crop's label is the slice's
    lesion kind when the lesion shows on that side of that slice, else healthy."""
    from genmed.data.crops import crop_kidneys

    images, labels, pids, sides, kidneys, areas = [], [], [], [], [], []
    for pid in dict.fromkeys(cases.patient_id):  # patients in order of appearance
        idx = np.nonzero(cases.patient_id == pid)[0]
        for c in crop_kidneys(cases.image[idx], cases.kidney[idx], cases.lesion[idx],
                              spacing_mm=(slice_gap_mm, cases.spacing_mm, cases.spacing_mm), size=crop,
                              pad_value=-1.0):
            for j in range(c.image.shape[0]):
                if not c.kidney_mask[j].any():
                    continue
                src, lesion_px = idx[c.z0 + j], int(c.lesion_mask[j].sum())
                images.append(c.image[j])
                labels.append(int(cases.label[src]) if lesion_px else 0)
                pids.append(pid)
                sides.append(c.side)
                kidneys.append(c.kidney_mask[j] | c.lesion_mask[j])
                areas.append(lesion_px * cases.spacing_mm ** 2)
    if not images:
        raise UserError("no kidney crops: no slice shows a kidney")
    return CropSet(np.stack(images).astype(np.float32), np.asarray(labels, np.int64),
                   np.asarray(pids), np.asarray(sides), np.stack(kidneys).astype(np.uint8),
                   np.asarray(areas, np.float64))


def make_scarce(crops: CropSet, n_malignant: int, seed: int) -> CropSet:
    """Keep every crop of patients without malignant crops, and malignant patients (whole, in a
    seeded order) until `n_malignant` malignant crops; the last patient's extra malignant crops
    are dropped. Raises when there are fewer malignant crops than asked for."""
    mal_pids = np.unique(crops.patient_id[crops.label == MALIGNANT])
    if (crops.label == MALIGNANT).sum() < n_malignant:
        raise UserError(f"only {(crops.label == MALIGNANT).sum()} malignant crops; asked to keep {n_malignant}")
    keep = ~np.isin(crops.patient_id, mal_pids)
    have = 0
    for pid in np.random.default_rng(seed).permutation(mal_pids):
        if have >= n_malignant:
            break
        own = crops.patient_id == pid
        mal = np.nonzero(own & (crops.label == MALIGNANT))[0]
        extra = mal[n_malignant - have:]
        keep |= own
        keep[extra] = False
        have += len(mal) - len(extra)
    return crops.subset(np.nonzero(keep)[0])


def study_crops(cfg: CropStudyConfig) -> tuple[CropSet, CropSet, CropSet]:
    """(all training crops, scarce training crops, held-out test crops)."""
    phantom = PhantomConfig(size=cfg.size)
    train = phantom_cases(cfg.n_patients, cfg.slices_per_patient, phantom, cfg.data_seed)
    test = phantom_cases(cfg.n_test_patients, cfg.slices_per_patient, phantom, cfg.data_seed + 1)
    full = kidney_crop_set(train, cfg.crop, phantom.slice_gap_mm)
    return full, make_scarce(full, cfg.malignant_crops, cfg.data_seed), \
        kidney_crop_set(test, cfg.crop, phantom.slice_gap_mm)


def crop_inputs(crops: CropSet, mask_channel: bool = False) -> np.ndarray:
    """Classifier input (N, 1, c, c): the image; with `mask_channel`, (N, 2, c, c) with the
    kidney mask in {-1, 1} as the second channel (the 256-px pipeline's window classifier does
    the same)."""
    x = crops.image[:, None].astype(np.float32)
    if mask_channel:
        x = np.concatenate([x, crops.kidney[:, None].astype(np.float32) * 2 - 1], axis=1)
    return x


def train_crop_classifier(x: np.ndarray, y: np.ndarray, cfg: CropStudyConfig, seed: int, *,
                          balanced: bool = False, augment: AugmentKind = "flip", width: tuple[int, int] = (16, 8)):
    """The registry's DenseNet classifier on (N, c, c) crops or (N, k, c, c) inputs, trained by
    the engine; `width` = (stem features, growth rate): the arms' (16, 8) default, or wider."""
    from genmed.models import balanced_weights, build_model
    from genmed.train import DictDataset

    torch.manual_seed(seed)
    x = x[:, None] if x.ndim == 3 else x
    weights = balanced_weights(y, len(LABELS)) if balanced else ()
    model = build_model("classifier", size=cfg.crop, in_channels=x.shape[1], classes=len(LABELS),
                        backbone="densenet", class_weights=weights, augment=augment,
                        init_features=width[0], growth_rate=width[1])
    batch = min(cfg.batch_size, len(x))
    data = DictDataset(image=torch.from_numpy(x), label=torch.from_numpy(np.asarray(y, np.int64)))
    return cfg.compute.fit(model, data, steps=cfg.epochs * max(1, len(x) // batch), seed=seed,
                           recipe="default", batch_size=batch)


def crop_proba(net, x: np.ndarray) -> np.ndarray:
    """Class probabilities (N, 3) of (N, c, c) crops or (N, k, c, c) inputs."""
    return net.predict_proba(torch.from_numpy(x[:, None] if x.ndim == 3 else x)).numpy()


def train_crop_generators(cfg: CropStudyConfig, scarce: CropSet, out: Path,
                          options: Mapping[str, dict] = GENERATOR_OPTIONS,
                          autoencoder: str | None = None) -> dict[str, SyntheticSource]:
    """Each family in `cfg.families` trained on the scarce crops with its `options` (the ldm
    on the autoencoder run `autoencoder` when given)."""
    from genmed.pipeline.synthetic import train_generators

    return train_generators(cfg.families, scarce.image, scarce.label, scarce.patient_id, out / "generators",
                            size=cfg.crop, steps=cfg.gen_steps, classes=(MALIGNANT,), seed=cfg.data_seed,
                            sample_steps=cfg.sample_steps, batch_size=cfg.gen_batch, device=cfg.compute.device,
                            precision=cfg.compute.precision, options=options, autoencoder=autoencoder)


def load_crop_generators(folder: str | os.PathLike, cfg: CropStudyConfig) -> dict[str, SyntheticSource]:
    """The generators `train_crop_generators` left in FOLDER/generators (one run per family,
    or per family and class for the unconditional ones), as sources of malignant crops."""
    from genmed.pipeline.synthetic import model_generator, per_class, run_generator
    from genmed.train import load_run

    root, sources = Path(folder) / "generators", {}
    for fam in cfg.families:
        joint, own = root / f"gen_{fam}", root / f"gen_{fam}_class{MALIGNANT}"
        if joint.is_dir():
            sources[fam] = run_generator(joint, cfg.crop, cfg.sample_steps)
        elif own.is_dir():
            model, _ = load_run(own)
            sources[fam] = per_class({MALIGNANT: model_generator(model, cfg.crop, cfg.sample_steps,
                                                                 conditional=False)})
        else:
            raise UserError(f"{root}: no trained {fam} generator (gen_{fam} or gen_{fam}_class{MALIGNANT})")
    return sources


def recall_difference(y: np.ndarray, preds: np.ndarray, base: np.ndarray, groups: np.ndarray,
                      seed: int = 0) -> dict[str, float]:
    """Malignant recall of `preds` minus that of `base` ((seeds, N) predicted classes each),
    averaged over seeds, with a 95% percentile bootstrap CI over `groups` (patients) and the
    minimal detectable effect at 80% power (2.8 x the bootstrap SE)."""
    mal = y == MALIGNANT

    def diff(i: np.ndarray) -> float:
        m = mal[i]
        if not m.any():  # a resample without malignant crops: dropped by bootstrap_ci
            return float("nan")
        return float(((preds[:, i] == MALIGNANT)[:, m].mean(1) - (base[:, i] == MALIGNANT)[:, m].mean(1)).mean())

    est = bootstrap_ci(diff, np.arange(len(y)), groups=groups, n_boot=1000, level=0.95, seed=seed)
    se = (est.high - est.low) / (2 * 1.96)
    return {"recall_diff": est.value, "recall_diff_lo": est.low, "recall_diff_hi": est.high, "mde": 2.8 * se}


def prior_corrected_table(label: np.ndarray, patient_id: np.ndarray, probas: Mapping[str, np.ndarray],
                          priors: Mapping[str, np.ndarray], seed: int = 0) -> pd.DataFrame:
    """Every arm's metrics after moving its classifier to a uniform class prior
    (`prior_shift.prior_corrected`; `probas[arm]` (seeds, N, K), `priors[arm]` its training
    prior): mean and 95% t-interval over seeds, and the malignant-recall difference from the
    corrected "real" arm with its patient-bootstrap CI. It asks whether an arm's images add
    anything beyond the heavier malignant label that a post-hoc correction also gives."""
    adjusted = {a: prior_corrected(p, priors[a]) for a, p in probas.items()}
    rows = [{"arm": a, "seed": s, **class_metrics(label, p)} for a, ps in adjusted.items() for s, p in enumerate(ps)]
    table = summarise(pd.DataFrame(rows))
    base = adjusted["real"].argmax(-1)
    diffs = [recall_difference(label, adjusted[a].argmax(-1), base, patient_id, seed=seed) for a in table["arm"]]
    return pd.concat([table, pd.DataFrame(diffs)], axis=1)


def oracle_class_fidelity(oracle, generators: Mapping[str, SyntheticSource], scarce: CropSet,
                          test_label: np.ndarray, test_proba: np.ndarray, cfg: CropStudyConfig) -> dict:
    """For each class-conditional generator, `cfg.fidelity_n` crops per class read by the
    oracle (`genmed.pipeline.class_fidelity`): its confusion against the oracle's on the real
    test crops, and the class-share gap at the scarce training set's class frequencies (the
    data the generator learned) and at uniform ones."""
    from genmed.pipeline.class_fidelity import class_share_gap, generated_confusion, reader_confusion
    from genmed.pipeline.synthetic import supports_labels

    k = len(LABELS)
    real = reader_confusion(test_label, test_proba)
    freq = np.bincount(scarce.label, minlength=k) / len(scarce.label)
    out = {"real_confusion": real.tolist(), "n_per_class": cfg.fidelity_n}
    for fam, gen in generators.items():
        if fam not in GENERATOR_OPTIONS or not supports_labels(fam):  # e.g. one VAE per class
            continue
        conf = generated_confusion(gen, lambda x: crop_proba(oracle, x), k, cfg.fidelity_n, cfg.data_seed)
        out[fam] = {"confusion": conf.tolist(), "training_freq": class_share_gap(freq, conf, real),
                    "uniform_freq": class_share_gap(np.full(k, 1 / k), conf, real)}
    return out


def crop_study(cfg: CropStudyConfig, out: str | os.PathLike,
               generators: Mapping[str, SyntheticSource] | None = None,
               log: Callable[[str], None] = lambda s: None) -> dict:
    """Run the study (training the generators unless `generators` is given); write
    crop_table.csv, crop_per_seed.csv, crop_memorisation.csv, crop_study.png, crop_study.json,
    synthetic.npz (each generator's malignant crops, in [-1, 1]) and crop_test_proba.npz (the
    test labels, patients and lesion areas, each arm's class probabilities as "arm:<arm>",
    (seeds, N, 3), and its training class prior as "prior:<arm>"), and crop_prior_corrected.csv
    (`prior_corrected_table`)."""
    out = Path(out)
    t0 = time.perf_counter()
    full, scarce, test = study_crops(cfg)
    log(f"crops: all training {full.counts()}, scarce {scarce.counts()}, test {test.counts()}")
    seconds: dict[str, float] = {}
    if generators is None:
        t = time.perf_counter()
        generators = train_crop_generators(cfg, scarce, out)
        seconds["train_generators"] = time.perf_counter() - t
    n_max = int(round(max(cfg.ratios) * cfg.malignant_crops))
    t = time.perf_counter()
    synth = {fam: np.asarray(gen(MALIGNANT, n_max, cfg.data_seed), np.float32) for fam, gen in generators.items()}
    seconds["sample_generators"] = time.perf_counter() - t
    for fam, s in synth.items():
        if s.shape[1:] != (cfg.crop, cfg.crop):
            raise UserError(f"generator {fam!r} gave crops {s.shape[1:]}, expected {cfg.crop}")
    if synth:
        with atomic_path(out / "synthetic.npz") as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, **synth)  # the crops every generator arm used, for audit
    arms: dict[str, tuple[np.ndarray, np.ndarray, bool, AugmentKind, str, float]] = {
        "real": (scarce.image, scarce.label, False, "flip", "none", 0.0),
        "reweight": (scarce.image, scarce.label, True, "flip", "none", 0.0),
        "classic": (scarce.image, scarce.label, False, "classic", "none", 0.0),
    }
    arms = {a: v for a, v in arms.items() if a == "real" or a in cfg.baselines}
    mal = scarce.image[scarce.label == MALIGNANT]
    sources = {"oversample": mal[np.arange(n_max) % len(mal)]} if cfg.oversample else {}
    for fam, s in {**sources, **synth}.items():
        for r in cfg.ratios:
            n = int(round(r * cfg.malignant_crops))
            arms[f"{fam} x{r:g}"] = (np.concatenate([scarce.image, s[:n]]),
                                     np.concatenate([scarce.label, np.full(n, MALIGNANT)]), False, "flip", fam, r)
    rows, preds, probas, priors = [], {}, {}, {}
    t = time.perf_counter()
    for arm, (x, y, balanced, aug, fam, ratio) in arms.items():
        preds[arm], probas[arm] = [], []
        # the prior the loss sees: class-balanced weights make it uniform
        priors[arm] = class_prior(y, len(LABELS), balanced_weights(y, len(LABELS)) if balanced else None)
        for seed in cfg.seeds:
            ts = time.perf_counter()
            proba = crop_proba(train_crop_classifier(x, y, cfg, seed, balanced=balanced, augment=aug), test.image)
            preds[arm].append(proba.argmax(1))
            probas[arm].append(proba.astype(np.float32))
            m = class_metrics(test.label, proba)
            rows.append({"arm": arm, "family": fam, "ratio": ratio, "seed": seed, "n_train": len(y), **m,
                         "seconds": round(time.perf_counter() - ts, 2)})
            log(f"{arm} seed {seed}: " + ", ".join(f"{k} {v:.3f}" for k, v in m.items()))
    seconds["train_classifiers"] = time.perf_counter() - t
    with atomic_path(out / "crop_test_proba.npz") as tmp, open(tmp, "wb") as f:  # for threshold / ranking analyses
        np.savez_compressed(f, label=test.label, patient_id=test.patient_id.astype(str),
                            lesion_mm2=test.lesion_mm2, **{f"arm:{a}": np.stack(p) for a, p in probas.items()},
                            **{f"prior:{a}": p for a, p in priors.items()})
    per_seed = pd.DataFrame(rows)
    table = summarise(per_seed)
    base = np.stack(preds["real"])
    diffs = [recall_difference(test.label, np.stack(preds[a]), base, test.patient_id, seed=cfg.data_seed)
             for a in table["arm"]]
    table = pd.concat([table, pd.DataFrame(diffs)], axis=1)
    oracle = train_crop_classifier(full.image, full.label, cfg, cfg.seeds[0], balanced=True, width=cfg.oracle_width)
    oracle_proba = crop_proba(oracle, test.image)
    oracle_test = class_metrics(test.label, oracle_proba)
    audit = {fam: float((crop_proba(oracle, s).argmax(1) == MALIGNANT).mean()) for fam, s in synth.items()}
    fidelity = oracle_class_fidelity(oracle, generators, scarce, test.label, oracle_proba, cfg)
    mem = memorisation(synth, mal, test.image[test.label == MALIGNANT]) if synth else []
    write_tables(out, per_seed, table, mem, prefix="crop")
    corrected = prior_corrected_table(test.label, test.patient_id, {a: np.stack(p) for a, p in probas.items()},
                                      priors, seed=cfg.data_seed)
    with atomic_path(out / "crop_prior_corrected.csv") as tmp:
        corrected.to_csv(tmp, index=False, float_format="%.4f")
    plot_table(table, out / "crop_study.png")
    result = {"config": to_dict(cfg), "crop_counts": {"train_all": full.counts(), "train_scarce": scarce.counts(),
                                                          "test": test.counts()},
              "test_patients": int(len(np.unique(test.patient_id))),
              "table": table.to_dict("records"), "prior_corrected": corrected.to_dict("records"),
              "memorisation": mem,
              "oracle": {"test": oracle_test, "synthetic_classed_malignant": audit, "class_fidelity": fidelity,
                         "note": "classifier on all real training crops (no scarcity), balanced weights, "
                                 f"DenseNet stem {cfg.oracle_width[0]}, growth {cfg.oracle_width[1]}"},
              "metrics": list(METRICS),
              "seconds": {**{k: round(v, 1) for k, v in seconds.items()}, "total": round(time.perf_counter() - t0, 1)}}
    write_json(out / "crop_study.json", result)
    return result

