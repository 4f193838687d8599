"""Augmentation study and few-label study in their quick settings."""

from __future__ import annotations

import numpy as np
import pandas as pd

from genmed.cli import main
from genmed.pipeline.augment import METRICS, augment_study, quick_augment_config, study_data
from genmed.pipeline.fewlabels import few_labels_study, quick_few_labels_config


def test_augment_study_with_a_copying_generator(tmp_path):
    cfg = quick_augment_config()
    train, _ = study_data(cfg)
    rng = np.random.default_rng(0)

    def copier(cls: int, n: int, seed: int) -> np.ndarray:  # memorises: returns training slices
        pool = train.image[train.label == cls]
        return pool[rng.integers(0, len(pool), n)] + 0.001 * rng.standard_normal((n, *pool.shape[1:]))

    res = augment_study(cfg, tmp_path, {"copier": copier})
    table = pd.read_csv(tmp_path / "augment_table.csv")
    assert list(table["arm"]) == ["real", "classic", "copier x1"]
    assert (table["n_seeds"] == 3).all()
    for m in METRICS:
        ok = table[m].dropna()
        assert ((ok >= 0) & (ok <= 1)).all()
        assert (table[f"{m}_lo"].dropna() <= table[m].dropna() + 1e-9).all()
    n_real = int(table.loc[0, "n_train"])
    n_syn = sum(int(round(1.0 * res["train_class_counts"][c])) for c in cfg.synth_classes)
    assert table.loc[2, "n_train"] == n_real + n_syn
    mem = pd.read_csv(tmp_path / "memorisation.csv")
    row = mem.set_index("source").loc["copier x1"]
    assert row["ratio"] < 0.1 and row["share_flagged"] > 0.9  # copies are caught
    assert (tmp_path / "augment.png").stat().st_size > 1000


def test_augment_study_cli_quick(tmp_path, capsys):
    out = tmp_path / "study"
    try:
        main(["pipeline", "augment-study", "--quick", "--out", str(out)])
        code = 0
    except SystemExit as exc:
        code = exc.code
    assert code == 0
    table = pd.read_csv(out / "augment_table.csv")
    assert list(table["arm"]) == ["real", "classic"]
    assert "malignant recall" in capsys.readouterr().out


def test_few_labels_study_quick(tmp_path):
    res = few_labels_study(quick_few_labels_config(), tmp_path)
    table = pd.read_csv(tmp_path / "few_labels.csv").set_index("arm")
    assert list(table.index) == ["supervised", "pseudo-label", "mask-generated pairs", "all labels"]
    assert table.loc["supervised", "n_true_masks"] < table.loc["all labels", "n_true_masks"]
    assert table.loc["pseudo-label", "n_true_masks"] == table.loc["supervised", "n_true_masks"]
    assert table.loc["mask-generated pairs", "n_true_masks"] == table.loc["supervised", "n_true_masks"]
    assert ((table["dice"] >= 0) & (table["dice"] <= 1)).all()
    assert "mask-conditioned" in res["note"]


def test_train_generators_conditional_and_per_class(tmp_path):
    from genmed.pipeline.cases import phantom_cases
    from genmed.pipeline.synthetic import train_generators

    cases = phantom_cases(6, 4, seed=0)
    gens = train_generators(["gan", "vae"], cases.image, cases.label, cases.patient_id, tmp_path,
                            size=32, steps=2, batch_size=8)
    assert (tmp_path / "gen_gan").is_dir()  # one class-conditional run
    assert (tmp_path / "gen_vae_class1").is_dir() and (tmp_path / "gen_vae_class2").is_dir()  # per class
    for gen in gens.values():
        s = gen(2, 3, 0)
        assert s.shape == (3, 64, 64) and s.dtype == np.float32 and -1 <= s.min() <= s.max() <= 1
