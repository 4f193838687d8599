"""Checks that keep feature-space metrics honest on a user's data.

- Domain: the shipped extractor (`genmed-phantom-cnn-v1`) was trained on the procedural kidney
  CT phantom in the abdomen window (L40/W400). On other modalities (MR, ...) or on real CT its
  features are not validated, so FID/KID/PRDC are at best relative comparisons: a warning
  says so (and the output records it under "domain"). An extractor trained on the user's own
  data (`genmed eval train-extractor --data`) records that data's modality and source in its
  file; the warning then fires only when the evaluated data's modality (or phantom vs real
  content) differs from it.
- Degenerate sets: a set whose features have (near) zero variance or fewer distinct images
  than k neighbours (an all-black sample set, a collapsed generator) makes k-NN manifolds and
  Gaussian fits meaningless: precision can read 1.00 for all-black samples. Such sets are
  flagged, and every metric built on them carries the flag.
"""

from __future__ import annotations

from typing import Any

import numpy as np

VARIANCE_RATIO = 1e-4  # a set with < 1e-4 of the other set's feature variance is degenerate
PIXEL_STD = 1e-3  # images whose pixels vary less than this (model units) are constant

SHIPPED_DOMAIN = "kidney CT phantom, abdomen window (level 40 HU, width 400 HU)"


def trained_domain(meta: dict[str, Any] | None) -> dict[str, Any] | None:
    """What an extractor trained by `genmed eval train-extractor --data` (metrics/
    extractor_engine.py) was trained on, from its recorded metadata; None when not recorded."""
    meta = meta or {}
    if not meta.get("modality"):
        return None
    phantom = str(meta.get("phantom", "false")).lower() == "true"
    where = "the kidney CT phantom" if phantom else str(meta.get("source"))
    units = f" ({meta['units']})" if meta.get("units") else ""
    return {"modality": str(meta["modality"]), "phantom": phantom, "source": meta.get("source"),
            "description": f"{meta['modality']}{units} slices of {where} at {meta.get('size', '?')} px"}


def domain_check(extractor_name: str, shipped: bool, data: dict[str, Any] | None,
                 extractor_meta: dict[str, Any] | None = None) -> tuple[dict, list[str]]:
    """({"extractor_domain", "data_modality", "data", "matches"}, warnings) for the data described
    by `data` ({"source", "modality", "phantom", "fake_modality"}). The shipped extractor's
    domain is the phantom; one trained with `--data` records its own (`extractor_meta`:
    modality, source, phantom); any other is the user's and is not checked. No warning when
    the data's modality is unknown or the domains match (same modality, phantom or not alike)."""
    data = data or {}
    modality = data.get("modality") or data.get("fake_modality")
    trained = None if shipped else trained_domain(extractor_meta)
    if shipped:
        trained = {"modality": "CT", "phantom": True, "description": SHIPPED_DOMAIN}
    info = {"extractor_domain": trained["description"] if trained else "user-supplied (not checked)",
            "data_modality": modality, "data": data.get("source"), "matches": None}
    if trained is None or modality is None:
        return info, []
    if not shipped:
        info["same_source"] = str(trained.get("source")) == str(data.get("source"))
    phantom = bool(data.get("phantom"))
    info["matches"] = modality.upper() == trained["modality"].upper() and phantom == trained["phantom"]
    if info["matches"]:
        return info, []
    if modality.upper() != trained["modality"].upper():
        why = (f"the data is {modality}, not {trained['modality']}: the features were never "
               "trained on it, so FID/KID/precision/recall are not validated here")
    elif trained["phantom"]:
        why = (f"the data is real {modality}, not the phantom: anatomy and texture differ from what "
               "the features were trained on, so treat FID/KID/precision/recall as relative comparisons")
    else:
        why = (f"the data is the phantom, not the {modality} data the features were trained on, so "
               "treat FID/KID/precision/recall as relative comparisons")
    what = f"the {SHIPPED_DOMAIN}" if shipped else trained["description"]
    return info, [f"extractor {extractor_name} was trained on {what}; {why} "
                  "(pass --extractor with one trained on your data: genmed eval train-extractor "
                  "--data YOUR_DATA)"]


def set_check(name: str, images: np.ndarray, feats: np.ndarray, other_feats: np.ndarray,
              k: int) -> str | None:
    """Why set `name` is degenerate, or None."""
    if float(np.asarray(images, np.float64).std()) < PIXEL_STD:
        return f"{name} images are constant (pixel SD {float(np.std(images)):.2g})"
    distinct = len(np.unique(np.round(feats, 6), axis=0))
    if distinct <= k:
        return f"{name} set has only {distinct} distinct image(s) in feature space (k = {k})"
    var, other = float(feats.var(0).sum()), float(other_feats.var(0).sum())
    if var <= VARIANCE_RATIO * other:
        return f"{name} features have near-zero variance ({var:.3g}, {var / other:.2g} of the other set's)"
    return None


def degenerate_check(real: np.ndarray, fake: np.ndarray, fr: np.ndarray, ff: np.ndarray,
                     k: int) -> tuple[dict, list[str]]:
    """({"real": reason or None, "fake": ...}, warnings)."""
    found = {"real": set_check("real", real, fr, ff, k), "fake": set_check("fake", fake, ff, fr, k)}
    warnings = [f"degenerate {which} set: {why}; precision/recall/density/coverage, FID and KID "
                "are flagged as unreliable" for which, why in found.items() if why]
    return found, warnings


def flag(metrics: dict[str, dict], reason: str) -> None:
    """Mark every metric dict in `metrics` as unreliable for `reason` (in place)."""
    for entry in metrics.values():
        if isinstance(entry, dict):
            entry["reliable"] = False
            entry["flag"] = reason
