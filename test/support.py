"""Paths and helpers the tests share (imported by conftest.py and the test modules)."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from osgeo import gdal

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "test" / "data"
"""The suite's real data, in the repository (sources, crops and licences in its README.md)."""
NC = DATA / "nc_landsat7_landcover"
SOLARIS = DATA / "solaris_buildings"
NAIP = DATA / "naip_river_points"
NC_NAMES = {1: "developed", 2: "agriculture", 3: "herbaceous", 4: "shrubland", 5: "forest",
            6: "water", 7: "sediment"}
"""The classes of the NC test data's strata.tif (codes 1 to 7)."""


def strata() -> np.ndarray:
    """NC's strata.tif, a dense land-cover reference: codes 1 to 7, 0 where it has none."""
    values = gdal.Open(str(NC / "strata.tif")).ReadAsArray()
    return np.where(values > 0, values, 0).astype(np.uint8)


def changed_strata(seed: int, share: float, corner: int) -> np.ndarray:
    """strata.tif with ``share`` of its pixels given a random class (seeded) and a nodata
    corner of ``corner`` pixels: a map whose errors are known."""
    rng = np.random.default_rng(seed)
    values = strata()
    change = (rng.random(values.shape) < share) & (values > 0)
    values[change] = rng.integers(1, 8, size=int(change.sum()))
    values[:corner, :corner] = 0
    return values


def write_class_raster(path, codes, class_map=None, like=NC / "strata.tif",
                       ids: dict[int, int] | None = None, colours: bool = False) -> str:
    """A uint8 class raster on ``like``'s grid, nodata 0, with ``class_map`` (a
    ``ClassMap``) or only a colour table (``colours``); ``ids`` renumbers codes into map ids."""
    template = gdal.Open(str(like))
    values = codes
    if ids is not None:
        table = np.zeros(256, dtype=np.uint8)
        table[list(ids)] = list(ids.values())
        values = table[codes]
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), codes.shape[1], codes.shape[0],
                                                   1, gdal.GDT_Byte)
    dataset.SetGeoTransform(template.GetGeoTransform())
    dataset.SetProjection(template.GetProjection())
    band = dataset.GetRasterBand(1)
    band.SetNoDataValue(0)
    band.WriteArray(values.astype(np.uint8))
    if colours:
        colour_table = gdal.ColorTable()
        for value in range(1, 8):
            colour_table.SetColorEntry(value, (10 * value, 200, 30, 255))
        band.SetRasterColorTable(colour_table)
    if class_map is not None:
        class_map.write_to_band(dataset)
    dataset = None
    return str(path)


# qgis_process gets its own QGIS profile, so the tests never touch (or depend on) the user's.
QGIS_PROFILE = tempfile.mkdtemp(prefix="landcoverunet-qgis-profile-")


def qgis_process(*args: str, timeout: int = 900,
                 env: dict | None = None) -> subprocess.CompletedProcess:
    """Runs qgis_process.bin (not Debian's broken wrapper) in the test environment.

    Args:
        args: qgis_process's arguments.
        timeout: seconds before the run is killed.
        env: variables to set on top of the test environment.
    """
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "QGIS_OPTS": "",
           "QGIS_CUSTOM_CONFIG_PATH": QGIS_PROFILE, **(env or {})}
    return subprocess.run(["qgis_process.bin", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def qgis_process_json(algorithm: str, parameters: dict, timeout: int = 900) -> dict:
    """Runs one algorithm through ``qgis_process.bin --json run`` and returns its JSON answer.

    Raises:
        AssertionError: with qgis_process's output when it fails.
    """
    args = ["--json", "run", algorithm, "--"]
    args += [f"{key}={value}" for key, value in parameters.items()]
    done = qgis_process(*args, timeout=timeout)
    assert done.returncode == 0, f"qgis_process failed:\n{done.stdout}\n{done.stderr}"
    start = done.stdout.find("{")
    return json.loads(done.stdout[start:])


def snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every file under a folder, less the statistics QGIS itself writes when it loads
    a raster layer (into an .aux.xml beside it, or into a VRT itself)."""
    found = {}
    for root, _, files in os.walk(folder):
        for name in files:
            if name.endswith((".aux.xml", ".vrt")):
                continue
            path = os.path.join(root, name)
            if os.path.isfile(path):
                with open(path, "rb") as handle:
                    found[os.path.relpath(path, folder)] = hashlib.sha256(
                        handle.read()).hexdigest()
    return found


def independent(stratum: np.ndarray, reference: np.ndarray, weights: np.ndarray, k: int) -> dict:
    """Per sample unit, as Stehman (2014) writes the stratified (ratio) estimators: stratum
    means of indicator variables, variances from the stratum sample variances (ddof=1)."""
    weights = weights / weights.sum()

    def mean_and_var(y):
        estimate = sum(w * y[stratum == h].mean() for h, w in enumerate(weights))
        variance = sum(w ** 2 * y[stratum == h].var(ddof=1) / (stratum == h).sum()
                       for h, w in enumerate(weights))
        return estimate, variance

    def ratio(y, x):
        r = mean_and_var(y)[0] / mean_and_var(x)[0]
        total_x = mean_and_var(x)[0]
        variance = sum(w ** 2 * (y[stratum == h].var(ddof=1) + r ** 2 * x[stratum == h].var(ddof=1)
                                 - 2 * r * np.cov(y[stratum == h], x[stratum == h])[0, 1])
                       / (stratum == h).sum() for h, w in enumerate(weights)) / total_x ** 2
        return r, variance

    correct = (stratum == reference).astype(float)
    out = {"oa": mean_and_var(correct), "area": [], "ua": [], "pa": []}
    for c in range(k):
        out["area"].append(mean_and_var((reference == c).astype(float)))
        in_c = stratum == c
        out["ua"].append((correct[in_c].mean(), correct[in_c].var(ddof=1) / in_c.sum()))
        out["pa"].append(ratio(((reference == c) & (stratum == c)).astype(float),
                               (reference == c).astype(float)))
    return out
