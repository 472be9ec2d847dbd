"""The sampling design of an accuracy sample: its size, its allocation, and its record.

A stratified random sample by map class is the design Olofsson et al. (2014) recommend: rare
classes get enough units to estimate their user's accuracy, and the map's pixel counts (the
strata weights) turn the sample's error matrix into area estimates. The weights must travel with
the sample, or the assessment could not find them later; so the design is written into the
sample's GeoPackage as layer metadata (``LANDCOVERUNET_SAMPLING_DESIGN``, JSON) by
``sample_points.py`` and read back by :func:`read_design`.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

from ..core.errors import UserError
from ..masks.features import VectorInput, open_layer
from .stratified import sample_size

DESIGN_KEY = "LANDCOVERUNET_SAMPLING_DESIGN"
STRATIFIED_BY_MAP_CLASS = "stratified random sampling by map class"

TARGET_SE = 0.01
"""Default target standard error of overall accuracy (Olofsson et al. 2014, section 5.1.1)."""
EXPECTED_UA_RARE = 0.7
EXPECTED_UA_COMMON = 0.9
RARE_SHARE = 0.1
"""A class covering less than this share of the map counts as rare (lower expected accuracy)."""
MINIMUM_PER_CLASS = 50


@dataclass(frozen=True)
class DesignClass:
    """One stratum: the map class, its pixel value and count, and its sample size."""

    value: float
    name: str
    pixels: int
    sample: int


@dataclass(frozen=True)
class SamplingDesign:
    """What the assessment needs to weight a sample: the strata and where they came from."""

    map_path: str
    classes: tuple[DesignClass, ...]
    seed: int
    target_se: float | None
    design: str = STRATIFIED_BY_MAP_CLASS

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "SamplingDesign":
        try:
            data = json.loads(text)
            classes = tuple(DesignClass(float(c["value"]), str(c["name"]), int(c["pixels"]),
                                        int(c["sample"])) for c in data["classes"])
            return cls(str(data["map_path"]), classes, int(data["seed"]),
                       data.get("target_se"), str(data.get("design", STRATIFIED_BY_MAP_CLASS)))
        except (KeyError, TypeError, ValueError, json.JSONDecodeError) as error:
            raise UserError(f"The sampling design stored with the sample is not valid: "
                            f"{error}.") from None


def expected_accuracies(pixels: np.ndarray, rare: float = EXPECTED_UA_RARE,
                        common: float = EXPECTED_UA_COMMON) -> np.ndarray:
    """The expected user's accuracy of each class: ``rare`` below RARE_SHARE of the map."""
    weights = np.asarray(pixels, dtype=np.float64) / max(float(np.sum(pixels)), 1.0)
    return np.where(weights < RARE_SHARE, rare, common)


def total_sample_size(pixels: np.ndarray, target_se: float = TARGET_SE,
                      rare: float = EXPECTED_UA_RARE, common: float = EXPECTED_UA_COMMON) -> int:
    """Eq. 13 of Olofsson et al. (2014) with the expected accuracies above."""
    pixels = np.asarray(pixels, dtype=np.float64)
    return sample_size(pixels, expected_accuracies(pixels, rare, common), target_se,
                       population=float(pixels.sum()))


def allocate(total: int, pixels: np.ndarray, minimum: int = MINIMUM_PER_CLASS) -> np.ndarray:
    """Sample size per class: proportional to area, but at least ``minimum`` in every class
    (fewer only where a class has fewer pixels), as Olofsson et al. (2014) advise for rare
    classes. The total exceeds ``total`` when the minimums alone need more."""
    pixels = np.asarray(pixels, dtype=np.int64)
    floor = np.minimum(minimum, pixels)
    fixed = np.zeros(len(pixels), dtype=bool)
    sizes = np.zeros(len(pixels), dtype=np.float64)
    while True:
        free = ~fixed & (pixels > 0)
        remaining = max(total - int(floor[fixed].sum()), 0)
        sizes[:] = 0.0
        if free.any():
            sizes[free] = remaining * pixels[free] / pixels[free].sum()
        low = free & (sizes < floor)
        if not low.any():
            break
        fixed |= low
    sizes = np.minimum(sizes, pixels)
    counts = np.floor(sizes).astype(np.int64)
    short = int(round(sizes.sum())) - int(counts.sum())
    for index in np.argsort(-(sizes - counts))[:max(short, 0)]:
        counts[index] += 1
    counts[fixed] = floor[fixed]
    return np.minimum(counts, pixels)


def read_design(vector: VectorInput) -> SamplingDesign | None:
    """The design stored with a sample layer; None when the layer carries none."""
    source, layer = open_layer(vector)  # noqa: F841 (the source keeps the layer alive)
    text = layer.GetMetadataItem(DESIGN_KEY)
    return SamplingDesign.from_json(text) if text else None
