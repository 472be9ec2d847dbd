"""Whether an assessment may report area-adjusted figures, and those figures.

Area-adjusted accuracy and area estimates are only valid for a probability sample whose strata
are the map's classes (Olofsson et al. 2014). Hand-digitised polygons, a reference map or points
placed by judgement are not, so for them the report keeps the pixel-count figures and says why
it shows no area-adjusted ones, rather than printing confidence intervals that mean nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.errors import UserError
from .design import SamplingDesign
from .stratified import StratifiedEstimates, check_strata, stratified_estimates

DESIGN_AUTO = "auto"
DESIGN_STRATIFIED = "stratified"
DESIGN_NONE = "none"
DESIGN_MODES = (DESIGN_AUTO, DESIGN_STRATIFIED, DESIGN_NONE)
"""The choices of assessaccuracy's SAMPLE_DESIGN parameter, in its order."""


@dataclass
class AreaAdjusted:
    """Area-adjusted figures per matrix class (NaN where undefined)."""

    estimates: StratifiedEstimates
    mapped_area_ha: np.ndarray
    adjusted_area_ha: np.ndarray
    adjusted_area_ci95_ha: np.ndarray
    design_note: str


def area_adjusted(matrix: np.ndarray, mapped_pixels: np.ndarray, mapped_area_ha: np.ndarray,
                  names: list[str], map_values: list[float | None], is_points: bool, mode: str,
                  design: SamplingDesign | None) -> tuple[AreaAdjusted | None, str]:
    """The area-adjusted figures, or None and the reason there are none.

    Args:
        matrix: the confusion matrix, rows = reference, columns = map (sample unit counts).
        mapped_pixels: the map's pixel count of each matrix class (0 for classes it lacks).
        mapped_area_ha: the map's area of each matrix class.
        names: each matrix class's name.
        map_values: each matrix class's pixel value in the map (None for classes it lacks).
        is_points: whether the reference is a point layer (a sample can only be points).
        mode: one of DESIGN_MODES: auto (use the design stored with the sample), stratified
            (the user says the points are a stratified random sample by map class), none.
        design: the design stored with the sample layer, if any.
    """
    if mode not in DESIGN_MODES:
        raise UserError(f"SAMPLE_DESIGN must be one of {', '.join(DESIGN_MODES)}; got '{mode}'.")
    why_not = ("Area-adjusted accuracy and area estimates need a probability sample whose strata "
               "are the map's classes (a stratified random sample, e.g. from 'Accuracy sample' "
               "(landcoverunet:accuracysample)).")
    if mode == DESIGN_NONE:
        return None, why_not + " SAMPLE_DESIGN says the reference is not such a sample."
    if not is_points:
        if mode == DESIGN_STRATIFIED:
            raise UserError("SAMPLE_DESIGN says the reference is a stratified random sample, but "
                            "it is not a point layer. Use the points of 'Accuracy sample', or set "
                            "SAMPLE_DESIGN to 'auto'.")
        return None, why_not + (" This reference (polygons or a raster) is not one: the figures "
                                "above count its pixels as they are.")
    if mode == DESIGN_AUTO and design is None:
        return None, why_not + (" These points carry no sampling design; if they are a stratified "
                                "random sample by map class, set SAMPLE_DESIGN to 'stratified'.")
    note = ("stratified random sample by map class; strata weights: the map's area of each "
            "class (its pixel counts)")
    if design is not None:
        stored = {c.value: c.pixels for c in design.classes}
        here = {v: int(n) for v, n in zip(map_values, mapped_pixels) if v is not None and n}
        if {v: n for v, n in stored.items() if n} != here:
            return None, ("The sample's stored design counts other pixels per class than this "
                          f"map (it was drawn on '{design.map_path}'): its strata are not this "
                          "map's classes, so no area-adjusted figures are computed.")
        note += f" (design stored with the sample: '{design.map_path}', seed {design.seed})"
    counts = np.asarray(matrix).T
    try:
        check_strata(counts, np.asarray(mapped_area_ha, dtype=np.float64), names)
    except UserError as error:
        return None, str(error)
    estimates = stratified_estimates(counts, mapped_area_ha)
    area, ci = estimates.areas(float(np.sum(mapped_area_ha)))
    return AreaAdjusted(estimates, np.asarray(mapped_area_ha, dtype=np.float64), area, ci,
                        note), ""
