"""Modality-aware intensities: native units (HU, MR arbitrary units, grey levels) <-> model units.

Models see every image in [-1, 1] ("model units"). How a native value gets there depends on
the modality, and the map is recorded so that generated images go back to the data's units:

- CT (HU): the abdomen window, level 40 HU, width 400 HU (`genmed.data.transforms.hu_to_unit`),
  clipped outside [-160, 240] HU. Fixed: HU mean the same thing in every scan.
- MR, PET, grey-level pictures, unknown: no absolute scale, so each volume is normalised by
  its own percentiles, `PERCENTILES` = (0.5, 99.5) %: the low one maps to -1, the high one to
  +1, values beyond are clipped (MONAI `ScaleIntensityRangePercentiles` does the same). A data
  set records the median of its volumes' percentile values; generated images are written back
  through that median map, in the data's own units (never called HU).

Figures use the same ranges: CT in the abdomen window, everything else between its percentiles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from genmed.data.transforms import ABDOMEN_LEVEL_HU, ABDOMEN_WIDTH_HU, hu_to_unit, unit_to_hu
from genmed.errors import UserError

PERCENTILES: tuple[float, float] = (0.5, 99.5)
UNITS: dict[str, str] = {"CT": "HU", "OT": "grey level", "SEG": "label"}
DEFAULT_UNITS = "a.u."  # arbitrary units: MR signal, unknown modalities


def units_for(modality: str, declared: str | None = None) -> str:
    """The units of a modality's values: HU for CT, `declared` (e.g. DICOM Units) when given,
    grey levels for pictures, else arbitrary units ("a.u.")."""
    if modality == "CT":
        return "HU"
    if declared:
        return str(declared)
    return UNITS.get(modality, DEFAULT_UNITS)


def looks_like_ct(array: np.ndarray) -> bool:
    """Heuristic for files without a modality field (plain NIfTI): air near -1000 HU.

    True when the minimum lies in [-3100, -800] (air and lung, or CT padding down to -3024)
    and at least 0.1% of the voxels are <= -800. MR magnitude images and pictures are never
    that negative (nibabel's SPM-normalised MR example reaches -610). A CT cropped to soft
    tissue is missed: give it a `modality` column in the manifest.
    """
    a = np.asarray(array, np.float32).reshape(-1)
    if a.size == 0:
        return False
    mn = float(a.min())
    return bool(-3100.0 <= mn <= -800.0 and float(np.mean(a <= -800.0)) >= 0.001)


@dataclass(frozen=True)
class IntensityMap:
    """How native values map to model units [-1, 1] and back.

    kind "window": CT, `low`/`high` the window's HU bounds; kind "percentile": `low`/`high` the
    native values of the `percentiles` (per volume, or the data set's median).
    """

    kind: str  # "window" (CT), "percentile" (per-volume percentiles), "range" (fixed, e.g. 0..255)
    modality: str
    units: str
    low: float
    high: float
    percentiles: tuple[float, float] | None = None

    def to_unit(self, x: Any) -> Any:
        """Native values -> [-1, 1] (clipped); numpy or torch in, same out."""
        if self.kind == "window":
            return hu_to_unit(x, (self.low + self.high) / 2, self.high - self.low)
        out = (x - self.low) * (2.0 / (self.high - self.low)) - 1.0
        return out.clip(-1.0, 1.0)

    def from_unit(self, x: Any) -> Any:
        """[-1, 1] -> native values (the inverse of `to_unit` inside the range)."""
        if self.kind == "window":
            return unit_to_hu(x, (self.low + self.high) / 2, self.high - self.low)
        return (x + 1.0) * ((self.high - self.low) / 2.0) + self.low

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["percentiles"] = list(self.percentiles) if self.percentiles else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IntensityMap:
        try:
            pct = d.get("percentiles")
            return cls(str(d["kind"]), str(d["modality"]), str(d["units"]), float(d["low"]),
                       float(d["high"]), tuple(pct) if pct else None)
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"malformed intensity record {d!r} ({exc})") from None


CT_WINDOW = IntensityMap("window", "CT", "HU", ABDOMEN_LEVEL_HU - ABDOMEN_WIDTH_HU / 2,
                         ABDOMEN_LEVEL_HU + ABDOMEN_WIDTH_HU / 2)


def intensity_map(array: np.ndarray, modality: str, units: str | None = None) -> IntensityMap:
    """The map of one image: the CT window, or its own percentile range."""
    if modality == "CT":
        return CT_WINDOW
    a = np.asarray(array, np.float32).reshape(-1)
    lo, hi = (float(v) for v in np.percentile(a, PERCENTILES))
    if not hi > lo:  # flat image, or one dominated by a single value
        lo, hi = float(a.min()), float(a.max())
    if not hi > lo:  # a constant image; at |values| ~ 1e16 and beyond, + 1 changes nothing
        hi = lo + max(1.0, abs(lo) * 1e-6)
    return IntensityMap("percentile", modality, units or units_for(modality), lo, hi, PERCENTILES)


def to_model_units(array: np.ndarray, modality: str, units: str | None = None
                   ) -> tuple[np.ndarray, IntensityMap]:
    """(float32 array in [-1, 1], the map used) for one image."""
    m = intensity_map(array, modality, units)
    return np.asarray(m.to_unit(np.asarray(array, np.float32)), np.float32), m


def dataset_map(maps: Sequence[IntensityMap]) -> IntensityMap:
    """One map for a data set: the CT window, or the median percentile values of its volumes.

    CT mixed with anything else is a `UserError` (HU and percentile-scaled values are
    different things); percentile-scaled modalities may mix (e.g. MR and unknown: "MR+unknown").
    """
    if not maps:
        return CT_WINDOW
    kinds = sorted({m.modality for m in maps})
    windowed = {m.kind == "window" for m in maps}
    if len(windowed) > 1:
        raise UserError(f"the data mixes CT (HU) with {[k for k in kinds if k != 'CT']}; "
                        "train on one modality at a time (or set a `modality` column)")
    first = maps[0]
    if first.kind == "window":
        return first
    units = sorted({m.units for m in maps})
    return IntensityMap(first.kind, "+".join(kinds), units[0] if len(units) == 1 else "+".join(units),
                        float(np.median([m.low for m in maps])),
                        float(np.median([m.high for m in maps])), first.percentiles)


def display_range(array: np.ndarray, modality: str) -> tuple[float, float]:
    """(vmin, vmax) for a figure: the abdomen window for CT, else the image's percentiles."""
    m = intensity_map(array, modality)
    return m.low, m.high
