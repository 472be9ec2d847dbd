"""Accuracy sample through Processing, and the chain map -> accuracysample -> (reference filled
from a raster) -> assessaccuracy against an independent computation; qgis_process."""
from __future__ import annotations

import csv

import numpy as np
import pytest
from osgeo import gdal, ogr
from qgis import processing
from qgis.core import QgsProcessingException
from support import NC, NC_NAMES, changed_strata, independent, strata, write_class_raster

from landcoverunet.backend.assess.design import allocate, read_design, total_sample_size
from landcoverunet.backend.core.class_map import ClassMap
from landcoverunet.backend.masks.features import VectorInput

NAMES = NC_NAMES
AREA_COLUMNS = ("class,mapped_area_ha,adjusted_area_ha,adjusted_area_ci95_ha,users_accuracy,"
                "users_accuracy_ci95,producers_accuracy,producers_accuracy_ci95")
PIXEL_HA = 28.5 * 28.5 / 10_000


def truth() -> np.ndarray:
    return strata().astype(np.int64)


def mapped() -> np.ndarray:
    """The reference with 25 % seeded errors and a nodata corner: the map to assess."""
    return changed_strata(21, 0.25, 80)


@pytest.fixture(scope="module")
def map_path(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("sample") / "map.tif")
    return write_class_raster(path, mapped(), ClassMap.from_codes(range(1, 8), NAMES))


def read_points(path: str) -> list[dict]:
    source = ogr.Open(path)
    layer = source.GetLayer(0)
    rows = []
    for feature in layer:
        point = feature.GetGeometryRef()
        rows.append({**feature.items(), "x": point.GetX(), "y": point.GetY()})
    return rows


def pixel_of(point: dict) -> tuple[int, int]:
    x0, dx, _, y0, _, dy = gdal.Open(str(NC / "strata.tif")).GetGeoTransform()
    column, row = (point["x"] - x0) / dx, (point["y"] - y0) / dy
    assert column % 1 == pytest.approx(0.5) and row % 1 == pytest.approx(0.5)   # centres
    return int(row), int(column)


def test_sample_is_stratified_repeatable_and_carries_its_design(plugin, map_path, tmp_path):
    first = processing.run("landcoverunet:accuracysample", {
        "INPUT": map_path, "SEED": 7, "OUTPUT": str(tmp_path / "first.gpkg")})
    again = processing.run("landcoverunet:accuracysample", {
        "INPUT": map_path, "SEED": 7, "OUTPUT": str(tmp_path / "again.gpkg")})
    pixels = np.bincount(mapped().ravel(), minlength=8)[1:]
    sizes = allocate(total_sample_size(pixels), pixels, 50)
    points = read_points(first["OUTPUT"])
    assert first["POINTS"] == len(points) == sizes.sum() and first["SEED_USED"] == 7
    assert points == read_points(again["OUTPUT"])
    values = mapped()
    per_class = np.zeros(7, dtype=np.int64)
    for point in points:
        assert values[pixel_of(point)] == point["map_code"]
        assert point["map_class"] == NAMES[point["map_code"]] and point["reference"] is None
        per_class[point["map_code"] - 1] += 1
    assert np.array_equal(per_class, sizes) and per_class.min() >= 50
    assert len({(p["x"], p["y"]) for p in points}) == len(points)           # no pixel twice
    design = read_design(VectorInput(first["OUTPUT"]))
    assert [c.pixels for c in design.classes] == list(pixels)
    assert [c.sample for c in design.classes] == list(sizes) and design.seed == 7
    other = read_points(processing.run("landcoverunet:accuracysample", {
        "INPUT": map_path, "SEED": 8, "SAMPLE_SIZE": 400, "MIN_PER_CLASS": 20,
        "OUTPUT": str(tmp_path / "other.gpkg")})["OUTPUT"])
    assert len(other) == 400 and other != points[:400]


def test_chain_equals_independent_computation(plugin, map_path, tmp_path):
    sample = processing.run("landcoverunet:accuracysample", {
        "INPUT": map_path, "SEED": 3, "REFERENCE_RASTER": str(NC / "strata.tif"),
        "OUTPUT": str(tmp_path / "sample.gpkg")})
    points = read_points(sample["OUTPUT"])
    assert sample["FILLED"] == len(points) and all(p["reference"] for p in points)
    result = processing.run("landcoverunet:assessaccuracy", {
        "INPUT": map_path, "REFERENCE": sample["OUTPUT"], "CLASS_FIELD": "reference",
        "OUTPUT_REPORT": str(tmp_path / "report.html"),
        "OUTPUT_AREA_TABLE": str(tmp_path / "areas.csv")})

    reference, values = truth(), mapped()
    cells = [pixel_of(p) for p in points]
    stratum = np.array([values[c] for c in cells]) - 1
    labels = np.array([reference[c] for c in cells]) - 1
    assert np.array_equal(labels + 1, [int(p["reference"]) for p in points])
    pixels = np.bincount(values.ravel(), minlength=8)[1:].astype(float)
    expected = independent(stratum, labels, pixels, 7)
    assert result["AREA_ADJUSTED_OA"] == pytest.approx(expected["oa"][0])
    assert result["AREA_ADJUSTED_OA_CI95"] == pytest.approx(1.96 * expected["oa"][1] ** 0.5)
    assert result["OVERALL_ACCURACY"] == pytest.approx((stratum == labels).mean())

    text = (tmp_path / "areas.csv").read_text(encoding="utf-8").splitlines()
    assert text[0] == AREA_COLUMNS
    rows = list(csv.DictReader(text))
    assert [r["class"] for r in rows] == list(NAMES.values())
    total_ha = pixels.sum() * PIXEL_HA
    for c, row in enumerate(rows):
        area, variance = expected["area"][c]
        assert float(row["mapped_area_ha"]) == pytest.approx(pixels[c] * PIXEL_HA)
        assert float(row["adjusted_area_ha"]) == pytest.approx(total_ha * area)
        assert float(row["adjusted_area_ci95_ha"]) == pytest.approx(
            1.96 * total_ha * variance ** 0.5)
        assert float(row["users_accuracy"]) == pytest.approx(expected["ua"][c][0])
        assert float(row["users_accuracy_ci95"]) == pytest.approx(
            1.96 * expected["ua"][c][1] ** 0.5)
        assert float(row["producers_accuracy"]) == pytest.approx(expected["pa"][c][0])
        assert float(row["producers_accuracy_ci95"]) == pytest.approx(
            1.96 * expected["pa"][c][1] ** 0.5)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Area-adjusted accuracy and area" in page and page.count("data:image/png") == 2
    assert "seed 3" in page


def test_references_that_are_not_samples_get_no_adjusted_figures(plugin, map_path, tmp_path):
    polygons = processing.run("landcoverunet:assessaccuracy", {
        "INPUT": map_path, "REFERENCE": str(NC / "landsat96_polygons.shp"), "CLASS_FIELD": "id",
        "CLASS_NAME_FIELD": "label", "OUTPUT_REPORT": str(tmp_path / "polygons.html"),
        "OUTPUT_AREA_TABLE": str(tmp_path / "polygons.csv")})
    assert polygons["AREA_ADJUSTED_OA"] is None and polygons["AREA_ADJUSTED_OA_CI95"] is None
    page = (tmp_path / "polygons.html").read_text(encoding="utf-8")
    assert "No area-adjusted figures" in page and "not one" in page
    rows = list(csv.DictReader(open(tmp_path / "polygons.csv", encoding="utf-8")))
    assert rows[0]["mapped_area_ha"] and rows[0]["adjusted_area_ha"] == ""

    points = dict(INPUT=map_path, REFERENCE=str(NC / "landsat96_points.shp"), CLASS_FIELD="id",
                  OUTPUT_REPORT=str(tmp_path / "points.html"))
    assert processing.run("landcoverunet:assessaccuracy", points)["AREA_ADJUSTED_OA"] is None
    assert "carry no sampling design" in (tmp_path / "points.html").read_text(encoding="utf-8")
    marked = processing.run("landcoverunet:assessaccuracy", {**points, "SAMPLE_DESIGN": 1})
    assert 0 < marked["AREA_ADJUSTED_OA"] < 1 and marked["AREA_ADJUSTED_OA_CI95"] > 0
    with pytest.raises(QgsProcessingException, match="not a point layer"):
        processing.run("landcoverunet:assessaccuracy", {
            "INPUT": map_path, "REFERENCE": str(NC / "strata.tif"), "SAMPLE_DESIGN": 1,
            "OUTPUT_REPORT": str(tmp_path / "raster.html")})


def test_sample_of_another_map_is_not_weighted_with_this_one(plugin, map_path, tmp_path):
    sample = processing.run("landcoverunet:accuracysample", {
        "INPUT": str(NC / "strata.tif"), "SEED": 1, "SAMPLE_SIZE": 300,
        "REFERENCE_RASTER": str(NC / "strata.tif"), "OUTPUT": str(tmp_path / "s.gpkg")})
    result = processing.run("landcoverunet:assessaccuracy", {
        "INPUT": map_path, "REFERENCE": sample["OUTPUT"], "CLASS_FIELD": "reference",
        "OUTPUT_REPORT": str(tmp_path / "r.html")})
    assert result["AREA_ADJUSTED_OA"] is None
    assert "counts other pixels per class than this map" in (tmp_path / "r.html").read_text(
        encoding="utf-8")


def test_qgis_process_runs_the_sample(qgis_process_ready, map_path, tmp_path):
    answer = qgis_process_ready("landcoverunet:accuracysample", {
        "INPUT": map_path, "SEED": 7, "SAMPLE_SIZE": 200, "MIN_PER_CLASS": 20,
        "OUTPUT": tmp_path / "cli.gpkg"})
    assert answer["results"]["POINTS"] == 200
    assert len(read_points(str(tmp_path / "cli.gpkg"))) == 200


def test_modeler_chains_sample_and_assessment(plugin, map_path, tmp_path):
    """A graphical-modeler model: Accuracy sample -> Assess accuracy, run as one algorithm."""
    from qgis.core import (QgsProcessingModelAlgorithm, QgsProcessingModelChildAlgorithm,
                           QgsProcessingModelChildParameterSource as Source,
                           QgsProcessingModelOutput, QgsProcessingModelParameter,
                           QgsProcessingParameterRasterLayer)

    model = QgsProcessingModelAlgorithm("sample_and_assess", "tests")
    for name in ("map", "reference"):
        model.addModelParameter(QgsProcessingParameterRasterLayer(name, name),
                                QgsProcessingModelParameter(name))
    steps = {
        "sample": ("accuracysample", {"INPUT": Source.fromModelParameter("map"),
                                      "REFERENCE_RASTER": Source.fromModelParameter("reference"),
                                      "SEED": Source.fromStaticValue(3)}, {}),
        "assess": ("assessaccuracy", {"INPUT": Source.fromModelParameter("map"),
                                      "REFERENCE": Source.fromChildOutput("sample", "OUTPUT"),
                                      "CLASS_FIELD": Source.fromStaticValue("reference")},
                   {"OUTPUT_REPORT": "report", "OUTPUT_AREA_TABLE": "areas"})}
    for child_id, (algorithm, sources, outputs) in steps.items():
        step = QgsProcessingModelChildAlgorithm(f"landcoverunet:{algorithm}")
        step.setChildId(child_id)
        for name, source in sources.items():
            step.addParameterSources(name, [source])
        model_outputs = {}
        for output_name, name in outputs.items():
            output = QgsProcessingModelOutput(name, name)
            output.setChildId(child_id)
            output.setChildOutputName(output_name)
            model_outputs[name] = output
        step.setModelOutputs(model_outputs)
        model.addChildAlgorithm(step)
    results = processing.run(model, {
        "map": map_path, "reference": str(NC / "strata.tif"),
        "assess:report": str(tmp_path / "model.html"), "assess:areas": str(tmp_path / "m.csv")})
    assert results["assess:areas"] == str(tmp_path / "m.csv")
    direct = processing.run("landcoverunet:assessaccuracy", {
        "INPUT": map_path, "CLASS_FIELD": "reference", "OUTPUT_REPORT": str(tmp_path / "d.html"),
        "OUTPUT_AREA_TABLE": str(tmp_path / "d.csv"),
        "REFERENCE": processing.run("landcoverunet:accuracysample", {
            "INPUT": map_path, "SEED": 3, "REFERENCE_RASTER": str(NC / "strata.tif"),
            "OUTPUT": str(tmp_path / "d.gpkg")})["OUTPUT"]})
    assert direct["AREA_ADJUSTED_OA"] > 0
    assert (tmp_path / "m.csv").read_text() == (tmp_path / "d.csv").read_text()


def test_sample_opens_styled_with_a_drop_down_of_class_names(plugin, map_path, tmp_path):
    """Opened from its file (a new project, a colleague): points coloured by map class, and
    'reference' edited with a value map of the class names (the default style in the
    GeoPackage), so labelling is picking from a list."""
    from qgis.core import QgsValueMapFieldFormatter, QgsVectorLayer

    sample = processing.run("landcoverunet:accuracysample", {
        "INPUT": map_path, "SAMPLE_SIZE": 60, "MIN_PER_CLASS": 5, "SEED": 3,
        "OUTPUT": str(tmp_path / "sample.gpkg")})
    layer = QgsVectorLayer(sample["OUTPUT"], "sample", "ogr")
    assert layer.isValid() and layer.featureCount() == 60
    expected = ClassMap.read_from_raster(map_path)
    renderer = layer.renderer()
    assert renderer.type() == "categorizedSymbol" and renderer.classAttribute() == "map_class"
    assert [(c.value(), c.label(), c.symbol().color().name()) for c in renderer.categories()] == \
        [(c.name, c.name, c.color) for c in expected.classes]
    setup = layer.editorWidgetSetup(layer.fields().indexOf("reference"))
    assert setup.type() == "ValueMap"
    assert [list(choice.values())[0] for choice in setup.config()["map"]] == \
        [c.name for c in expected.classes] + [QgsValueMapFieldFormatter.NULL_VALUE]
    assert read_points(sample["OUTPUT"])[0]["reference"] is None   # still the sample layer
