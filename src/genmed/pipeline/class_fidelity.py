"""Does a class-conditional generator draw the class it is asked for, in the data's proportions?

Issue 14's class-share target ("class shares of GAN samples within 5 points of the data's")
read with a classifier that is good on real images (at 64-px slices the extractor's head was at
chance on lesion classes, so the figure said nothing about lesions). A reader is imperfect on
real images too, so the generated crops are compared with real ones *through the same reader*:

- `reader_confusion`: row c = the shares of class-c images the reader assigns to each class;
  on real held-out images with their true labels, and on generated images with the class
  they were generated for;
- `class_share_gap`: the shares the reader would see if images were drawn in the data's class
  frequencies, generated against real; the largest absolute difference is the target's figure;
- the diagonal of the generated confusion against the real one says, per class, whether the
  generator obeys its label (a frequency-weighted gap alone is dominated by the common class).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.metrics import confusion_matrix

from genmed.errors import UserError
from genmed.pipeline.synthetic import SyntheticSource


def reader_confusion(label: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """(K, K) row-normalised confusion of a reader's arg-max: entry (c, j) = the share of
    images of class c read as class j; a class without images gets a row of NaN."""
    k = proba.shape[1]
    counts = confusion_matrix(label, np.asarray(proba).argmax(1), labels=np.arange(k)).astype(float)
    n = counts.sum(1, keepdims=True)
    return np.divide(counts, n, out=np.full_like(counts, np.nan), where=n > 0)


def generated_confusion(source: SyntheticSource, read: Callable[[np.ndarray], np.ndarray],
                        classes: int, n: int, seed: int) -> np.ndarray:
    """`reader_confusion` of `n` images generated per class (seed + class) and read by `read`
    ((N, H, W) images -> (N, K) probabilities)."""
    if n < 1:
        raise UserError(f"n={n} generated images per class must be >= 1")
    images = [np.asarray(source(c, n, seed + c), np.float32) for c in range(classes)]
    labels = np.repeat(np.arange(classes), [len(x) for x in images])
    return reader_confusion(labels, read(np.concatenate(images)))


def class_share_gap(freq: np.ndarray, generated: np.ndarray, real: np.ndarray) -> dict:
    """Shares the reader sees when images come in class frequencies `freq` (K,), generated
    (`freq @ generated`) and real (`freq @ real`), and the largest absolute difference."""
    freq = np.asarray(freq, float)
    if freq.ndim != 1 or freq.min() < 0 or not np.isclose(freq.sum(), 1.0):
        raise UserError(f"class frequencies {freq} must be >= 0 and sum to 1")
    synth, ref = freq @ generated, freq @ real
    return {"freq": freq.tolist(), "generated_shares": synth.tolist(), "real_shares": ref.tolist(),
            "max_gap": float(np.abs(synth - ref).max())}
