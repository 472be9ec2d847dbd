"""Assess accuracy through Processing: real NC polygons, points and masks, another CRS, errors."""
from __future__ import annotations

import csv
import os

import numpy as np
import pytest
from osgeo import gdal, osr
from qgis import processing
from qgis.core import QgsProcessingException
from support import NC, NC_NAMES, SOLARIS, changed_strata, write_class_raster

from landcoverunet.backend.core.class_map import ClassMap

ALG = "landcoverunet:assessaccuracy"
NAMES = NC_NAMES
POLYGONS = str(NC / "landsat96_polygons.shp")


def known_prediction() -> np.ndarray:
    """strata.tif (dense reference) with 20 % seeded changes and a nodata corner."""
    return changed_strata(42, 0.2, 120)


def polygon_pixels() -> np.ndarray:
    """The polygons burnt with all_touched (README: equals landsat96_labelled_pixels.tif)."""
    values = gdal.Open(str(NC / "landsat96_labelled_pixels.tif")).ReadAsArray()
    return np.where(values > 0, values, 0).astype(np.int64)


def figures(reference: np.ndarray, prediction: np.ndarray, k: int = 7) -> dict:
    """Independent numpy computation over the same pixels (classes 1..k, 0 = nothing)."""
    both = (reference > 0) & (prediction > 0)
    matrix = np.zeros((k, k), dtype=np.int64)
    np.add.at(matrix, (reference[both] - 1, prediction[both].astype(np.int64) - 1), 1)
    n, tp = matrix.sum(), np.diag(matrix)
    rows, cols = matrix.sum(axis=1), matrix.sum(axis=0)
    po, pe = tp.sum() / n, (rows * cols).sum() / n ** 2
    present = rows > 0
    return {"matrix": matrix, "OVERALL_ACCURACY": po, "KAPPA": (po - pe) / (1 - pe),
            "MIOU": (tp / (rows + cols - tp))[present].mean(),
            "MEAN_F1": (2 * tp / (rows + cols))[present].mean()}


@pytest.fixture(scope="module")
def prediction(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("assess") / "classified.tif")
    return write_class_raster(path, known_prediction(), ClassMap.from_codes(range(1, 8), NAMES))


def run(tmp_path, **parameters) -> dict:
    parameters.setdefault("OUTPUT_REPORT", str(tmp_path / "report.html"))
    return processing.run(ALG, parameters)


def read_table(path) -> np.ndarray:
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    k = len(rows) - 2
    return np.array([[int(v) for v in row[2:2 + k]] for row in rows[1:1 + k]])


def test_polygons_equal_independent_numpy(plugin, prediction, tmp_path):
    result = run(tmp_path, INPUT=prediction, REFERENCE=POLYGONS, CLASS_FIELD="id",
                 CLASS_NAME_FIELD="label", ALL_TOUCHED=True,
                 OUTPUT_TABLE=str(tmp_path / "table.csv"))
    expected = figures(polygon_pixels(), known_prediction())
    assert np.array_equal(read_table(result["OUTPUT_TABLE"]), expected["matrix"])
    for key in ("OVERALL_ACCURACY", "KAPPA", "MIOU", "MEAN_F1"):
        assert result[key] == pytest.approx(expected[key]), key
    assert result["COMPARED"] == expected["matrix"].sum()
    page = open(result["OUTPUT_REPORT"], encoding="utf-8").read()
    assert "data:image/png;base64," in page and "sediment" in page and "Cohen" in page
    assert sorted(os.listdir(tmp_path)) == ["report.html", "table.csv"]


def test_reference_in_another_crs_and_as_mask(plugin, prediction, tmp_path):
    projected = str(tmp_path / "polygons_4326.gpkg")
    gdal.VectorTranslate(projected, POLYGONS, dstSRS="EPSG:4326", format="GPKG")
    in_4326 = run(tmp_path, INPUT=prediction, REFERENCE=projected, CLASS_FIELD="id",
                  CLASS_NAME_FIELD="label", ALL_TOUCHED=True,
                  OUTPUT_TABLE=str(tmp_path / "t4326.csv"))
    expected = figures(polygon_pixels(), known_prediction())
    matrix = read_table(in_4326["OUTPUT_TABLE"])
    assert np.abs(matrix - expected["matrix"]).sum() <= 40   # boundary pixels only
    assert in_4326["OVERALL_ACCURACY"] == pytest.approx(expected["OVERALL_ACCURACY"], abs=0.01)

    mask = processing.run("landcoverunet:buildmasks", {
        "INPUT": str(NC / "lsat7_2000_10.tif"), "VECTORS": [POLYGONS], "CLASS_FIELD": "id",
        "CLASS_NAME_FIELD": "label", "ALL_TOUCHED": True,
        "OUTPUT": str(tmp_path / "mask.tif")})["OUTPUT"]
    assert not osr.SpatialReference(gdal.Open(mask).GetProjection()).IsSame(
        osr.SpatialReference(gdal.Open(prediction).GetProjection()))   # resampled onto the map
    from_mask = run(tmp_path, INPUT=prediction, REFERENCE=mask,
                    OUTPUT_REPORT=str(tmp_path / "mask.html"))
    band_valid = gdal.Open(str(NC / "lsat7_2000_10.tif")).ReadAsArray() != -99999
    expected = figures(np.where(band_valid, polygon_pixels(), 0), known_prediction())
    assert from_mask["COMPARED"] == pytest.approx(expected["matrix"].sum(), abs=40)
    assert from_mask["KAPPA"] == pytest.approx(expected["KAPPA"], abs=0.01)


def test_points_count_the_pixel_they_fall_in(plugin, prediction, tmp_path):
    result = run(tmp_path, INPUT=prediction, REFERENCE=str(NC / "landsat96_points.shp"),
                 CLASS_FIELD="id", CLASS_NAME_FIELD="label",
                 OUTPUT_TABLE=str(tmp_path / "points.csv"))
    source = gdal.OpenEx(str(NC / "landsat96_points.shp"))
    layer = source.GetLayer(0)
    x0, dx, _, y0, _, dy = gdal.Open(prediction).GetGeoTransform()
    values = known_prediction()
    truth, guess = [], []
    for feature in layer:
        point = feature.GetGeometryRef()
        col, row = int((point.GetX() - x0) // dx), int((point.GetY() - y0) // dy)
        if 0 <= row < values.shape[0] and 0 <= col < values.shape[1] and values[row, col]:
            truth.append(feature.GetField("id"))
            guess.append(values[row, col])
    matrix = np.zeros((7, 7), dtype=np.int64)
    np.add.at(matrix, (np.array(truth) - 1, np.array(guess) - 1), 1)
    assert np.array_equal(read_table(result["OUTPUT_TABLE"]), matrix)
    assert result["OVERALL_ACCURACY"] == pytest.approx(np.trace(matrix) / matrix.sum())

    lonlat = str(tmp_path / "points_4326.geojson")
    gdal.VectorTranslate(lonlat, str(NC / "landsat96_points.shp"), dstSRS="EPSG:4326",
                         format="GeoJSON", options=["-select", "id,label"])
    again = run(tmp_path, INPUT=prediction, REFERENCE=lonlat, CLASS_FIELD="label",
                OUTPUT_REPORT=str(tmp_path / "again.html"))
    assert again["COMPARED"] == matrix.sum()
    assert again["KAPPA"] == pytest.approx(result["KAPPA"])


@pytest.mark.parametrize("case, parameters, message", [
    ("nothing matches", dict(INPUT=str(NC / "strata.tif"), CLASS_FIELD="label"),
     "No reference class matches"),
    ("missing field", dict(CLASS_FIELD="nope"), "has no field 'nope'"),
    ("no overlap", dict(REFERENCE=str(SOLARIS / "geotiff_labels.gpkg"), CLASS_FIELD=""),
     "None of the features overlaps"),
])
def test_bad_input_is_a_clear_error_and_leaves_no_file(plugin, prediction, tmp_path, case,
                                                       parameters, message):
    base = dict(INPUT=prediction, REFERENCE=POLYGONS, CLASS_FIELD="id",
                OUTPUT_TABLE=str(tmp_path / "table.csv"))
    base.update(parameters)
    with pytest.raises(QgsProcessingException, match=message):
        run(tmp_path, **base)
    assert os.listdir(tmp_path) == []


def test_qgis_process_run(qgis_process_ready, prediction, tmp_path):
    answer = qgis_process_ready(ALG, {
        "INPUT": prediction, "REFERENCE": POLYGONS, "CLASS_FIELD": "id",
        "CLASS_NAME_FIELD": "label", "ALL_TOUCHED": "true",
        "OUTPUT_REPORT": tmp_path / "report.html", "OUTPUT_TABLE": tmp_path / "table.csv"})
    results = answer["results"]
    expected = figures(polygon_pixels(), known_prediction())
    assert results["KAPPA"] == pytest.approx(expected["KAPPA"])
    assert results["MIOU"] == pytest.approx(expected["MIOU"])
    assert np.array_equal(read_table(tmp_path / "table.csv"), expected["matrix"])
    assert (tmp_path / "report.html").stat().st_size > 10_000
