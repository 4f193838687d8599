"""What a training run sees and what it holds out: the dataset summary every training prints.

`summarise` counts volumes, items (2D slices or 3D volumes) and patients per split, says which
split is trained on, how the splits were made (the manifest's `split` column, or a patient-level
split with its fractions and seed) and what is held out and why, so no data is held out (or
left in) silently. `summary_lines` formats it for the terminal; the dict is saved with the run
(RUN_DIR/data.json, "summary").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from genmed.data.splits import SPLITS


def summarise(ds, index: Mapping[str, np.ndarray], *, used: str, split_from: str) -> dict[str, Any]:
    """Counts per split of `ds` (an `ImageDataset` of all items) under `index` (split -> items)."""
    info = getattr(ds, "info", {}) or {}
    item = "slices" if ds.spatial_dims == 2 else "volumes"
    vols = np.asarray(ds.volume_ids)
    pids = np.asarray(ds.patient_ids)
    splits = {}
    for name in SPLITS:
        idx = np.asarray(index.get(name, np.zeros(0, np.int64)), np.int64)
        splits[name] = {"volumes": int(len(np.unique(vols[idx]))) if len(idx) else 0,
                        "items": int(len(idx)),
                        "patients": int(len(np.unique(pids[idx]))) if len(idx) else 0}
    held = [n for n in SPLITS if n != used and splits[n]["items"]]
    n_patients = len(np.unique(pids))
    if used == "all":
        held_out = "nothing: every item is used (split 'all')"
    elif held:
        held_out = (", ".join(f"{n}: {splits[n]['patients']} patient(s)" for n in held)
                    + " held out by patient (never trained on; for validation and evaluation)")
    else:
        held_out = (f"nothing: {n_patients} patient(s) are too few for a train/val/test split by "
                    "patient (needs >= 3); an evaluation against this data measures fit to the "
                    "training patients, not generalisation")
    return {
        "source": info.get("source"), "modality": info.get("modality"), "units": info.get("units"),
        "spacing_mm": info.get("spacing_mm"), "spacing_range_mm": info.get("spacing_range_mm"),
        "resampled_to_mm": info.get("resampled_to_mm"),
        "orientation": info.get("orientation"),
        "labelled": bool(info.get("labelled", True)), "item": item,
        "patients": int(n_patients), "splits": splits, "trained_on": used,
        "split_from": split_from, "held_out": held_out,
        "patient_from": info.get("patient_from"),
    }


def summary_lines(s: Mapping[str, Any], *, evaluation: bool = False) -> list[str]:
    """The summary as terminal lines; `evaluation`: for `eval images`, where `trained_on` is the
    split used as the real set and the training split is the memorisation reference."""
    spacing = s.get("spacing_mm")
    sp = " x ".join(f"{v:.3g}" for v in spacing) + " mm per model pixel" if spacing else "spacing unknown"
    if s.get("resampled_to_mm"):
        sp += " (resampled)"
    lines = [f"data: {s.get('source')}: {s.get('modality')} ({s.get('units')}), {s['item']} at {sp}, "
             + ("labelled" if s.get("labelled") else "unlabelled (unconditional training only)")]
    lines.append(f"  {'split':<6} {'volumes':>8} {s['item']:>8} {'patients':>9}")
    used = s["trained_on"]
    for name, c in s["splits"].items():
        if evaluation:
            role = "<- real set" if name == used or used == "all" else (
                "training split: memorisation reference" if name == "train" and c["items"] else "")
        else:
            role = "<- trained on" if name == used or used == "all" else ("held out" if c["items"] else "")
        lines.append(f"  {name:<6} {c['volumes']:>8} {c['items']:>8} {c['patients']:>9}  {role}".rstrip())
    lines.append(f"  splits: {s['split_from']}; patients from {s.get('patient_from')}")
    spread = s.get("spacing_range_mm")
    if spread and any(hi > 1.2 * lo for lo, hi in spread):
        rng = " x ".join(f"{lo:.3g}..{hi:.3g}" for lo, hi in spread)
        lines.append(f"  note: model-pixel spacing varies between volumes ({rng} mm): the scans differ "
                     "in resolution or field of view; resample them to one spacing (--spacing MM) "
                     "for a physically consistent model")
    if not evaluation:
        lines.append(f"  held out: {s['held_out']}")
    elif used in ("train", "all"):
        lines.append("  note: the real set includes training patients: the metrics measure fit, "
                     "not generalisation, and the memorisation audit has no held-out reference")
    return lines
