"""The checks of generation from a mask: the noise reading compares a windowed generated slice
with a raw scan fairly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genmed.apps.generate_from_mask import check_conditions, train_checkers
from genmed.errors import UserError


class _Segmenter:
    """Stand-ins: the checks' noise reading does not depend on the readers."""

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x, dtype=torch.long)


class _Classifier:
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(x), dtype=torch.long)


def test_noise_reading_sees_body_noise_in_windowed_and_raw_slices_alike() -> None:
    """A raw scan (air at -1000 HU, noise everywhere) and a generated slice (air clipped to the
    window's -160 HU, noise in the body only) with the same 20 HU body noise: the soft-tissue
    mode reads both near 20 HU, the whole-slice wavelet MAD reads the generated one far lower."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:96, :96]
    body = ((yy - 48) / 30.0) ** 2 + ((xx - 48) / 40.0) ** 2 < 1  # 41% of the slice
    noise = rng.normal(0.0, 20.0, (4, 96, 96))
    raw = np.where(body, 40.0, -1000.0) + noise
    generated = np.where(body, 40.0 + noise, -160.0)
    masks, kinds, noisy = body.astype(np.int64)[None].repeat(4, 0), np.zeros(4, int), np.zeros(4, bool)
    read = {name: {sp: check_conditions(img, masks, kinds, noisy, _Segmenter(), _Classifier(), spacing_mm=sp)
                   ["noise_sd_hu"]["standard"] for sp in (None, 1.5)}
            for name, img in (("raw", raw), ("generated", generated))}
    assert abs(read["raw"][1.5] - 20.0) < 3.0 and abs(read["generated"][1.5] - 20.0) < 3.0
    assert read["generated"][None] < 0.5 * read["raw"][None]  # the MAD is a median over mostly air


def test_both_readers_train_with_the_requested_augmentation() -> None:
    """`train_checkers(augment="quality")` gives the segmenter and the kind classifier the
    blur/noise/low-resolution augmentation, so both read smooth generated slices; the default
    trains them on the real slices as they are."""
    rng = np.random.default_rng(0)
    images = rng.normal(40.0, 20.0, (4, 32, 32))
    maps, kinds = np.ones((4, 32, 32), np.int64), np.zeros(4, np.int64)
    for aug in ("quality", "none"):
        seg, cls = train_checkers(images, maps, kinds, steps=1, augment=aug)
        assert seg.config.augment == aug and cls.config.augment == aug


def test_readers_kept_in_a_folder_load_back_and_read_the_same(tmp_path) -> None:
    """With `out`, the two readers are engine runs: `load_run` gives back the same predictions."""
    from genmed.train import load_run

    rng = np.random.default_rng(0)
    images = rng.normal(40.0, 20.0, (4, 32, 32))
    maps, kinds = rng.integers(0, 4, (4, 32, 32)), np.array([0, 1, 2, 0])
    seg, cls = train_checkers(images, maps, kinds, steps=2, out=tmp_path / "readers")
    x = torch.from_numpy(rng.uniform(-1, 1, (3, 1, 32, 32)).astype(np.float32))
    seg2, cls2 = (load_run(tmp_path / "readers" / name)[0] for name in ("segmenter", "classifier"))
    assert torch.equal(seg.predict(x), seg2.predict(x)) and torch.equal(cls.predict(x), cls2.predict(x))


def test_kind_accuracy_on_lesion_slices_sees_through_a_reader_that_always_answers_healthy() -> None:
    """Where most slices hold no lesion, a reader that always answers "healthy" scores high
    over all slices and zero over the lesion slices."""
    images = np.random.default_rng(0).normal(40.0, 20.0, (10, 16, 16))
    masks, noisy = np.ones((10, 16, 16), np.int64), np.zeros(10, bool)
    kinds = np.array([0] * 8 + [1, 2])
    read = check_conditions(images, masks, kinds, noisy, _Segmenter(), _Classifier())
    assert read["kind_accuracy"] == 0.8 and read["kind_accuracy_lesion_slices"] == 0.0


class _SquareSegmenter:
    """Reads kidney (2) in rows and columns 4-11 of every slice, body elsewhere."""

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.ones_like(x, dtype=torch.long)
        out[..., 4:12, 4:12] = 2
        return out


def test_kidney_overlap_by_volume_adds_up_to_the_pooled_dice() -> None:
    """Volume 0's kidney is the segmenter's square (Dice 1), volume 1's lies half outside it:
    the per-volume overlaps say which volume lost, and their sums give the pooled Dice."""
    masks = np.ones((4, 16, 16), np.int64)
    masks[:2, 4:12, 4:12] = 2
    masks[2:, 4:12, 8:16] = 2
    images = np.random.default_rng(0).normal(40.0, 20.0, (4, 16, 16))
    noisy, kinds = np.zeros(4, bool), np.zeros(4, np.int64)
    read = check_conditions(images, masks, kinds, noisy, _SquareSegmenter(), _Classifier(),
                            groups=np.array([0, 0, 1, 1]))
    (a0, b0), (a1, b1) = read["kidney_overlap_by_group"]
    assert a0 / b0 == 1.0 and a1 / b1 == 0.5
    assert read["dice"]["kidney"] == (a0 + a1) / (b0 + b1)
    with pytest.raises(UserError, match="one key per slice"):
        check_conditions(images, masks, kinds, noisy, _SquareSegmenter(), _Classifier(), groups=np.zeros(3))
