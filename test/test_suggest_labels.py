"""Where to digitise next (``landcoverunet:suggestlabels``): the backend's ranking against the
model's own probabilities, spacing, skipped labels; the algorithm's drop-down and style; the
filled points back through Build training masks; qgis_process."""
from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal, ogr
from qgis import processing
from support import NC, NC_NAMES
from fixtures_classify import make_image, make_test_model, read, rgb

from landcoverunet.backend.classify.classify_raster import classify_raster
from landcoverunet.backend.core.errors import UserError
from landcoverunet.backend.suggest.ranking import margin_uncertainty
from landcoverunet.backend.suggest.suggest_labels import default_spacing, suggest_labels


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> tuple[str, str, np.ndarray]:
    """A random 3-band image, a tiny random model, and the model's score (1 - margin) per pixel
    as Classify raster's probabilities give it."""
    folder = tmp_path_factory.mktemp("suggest")
    image = make_image(folder / "image.tif", rgb(90, 70, seed=3))
    model = make_test_model(folder / "model.keras", bands=3, classes=4, mean=[100] * 3,
                            std=[50] * 3)
    classify_raster(image, model, str(folder / "classes.tif"),
                    probabilities_path=str(folder / "p.tif"))
    return image, model, margin_uncertainty(read(folder / "p.tif"))[0]


def points(path: str) -> list[dict]:
    source = ogr.Open(path)
    rows = []
    for feature in source.GetLayer(0):
        point = feature.GetGeometryRef()
        rows.append({**feature.items(), "x": point.GetX(), "y": point.GetY()})
    return rows


def pixel(image: str, site: dict) -> tuple[int, int]:
    x0, dx, _, y0, _, dy = gdal.Open(image).GetGeoTransform()
    column, row = (site["x"] - x0) / dx, (site["y"] - y0) / dy
    assert column % 1 == pytest.approx(0.5) and row % 1 == pytest.approx(0.5)   # centres
    return int(row), int(column)


def test_sites_are_the_most_uncertain_pixels_spaced_apart(scene, tmp_path):
    image, model, score = scene
    result = suggest_labels(image, model, str(tmp_path / "s.gpkg"), count=12, spacing=9.0)
    sites = points(result.path)
    assert result.sites == len(sites) == 12 and [s["rank"] for s in sites] == list(range(1, 13))
    where = [pixel(image, s) for s in sites]
    assert [s["score"] for s in sites] == pytest.approx([float(score[w]) for w in where],
                                                        abs=1e-3)
    assert sites[0]["score"] == pytest.approx(float(score.max()), abs=1e-3)
    spread = np.array(where, float)
    distances = np.hypot(*(spread[:, None] - spread[None]).transpose(2, 0, 1))
    assert distances[~np.eye(len(where), dtype=bool)].min() >= 9
    names = {f"class {c}" for c in range(1, 5)}
    assert all(s["predicted"] in names and s["second"] in names and
               s["predicted"] != s["second"] and s["class"] is None for s in sites)


def test_labelled_places_are_skipped(scene, tmp_path):
    image, model, score = scene
    first = pixel(image, points(suggest_labels(image, model, str(tmp_path / "a.gpkg"), count=1,
                                               spacing=4.0).path)[0])
    mask = np.zeros((1, *score.shape), np.uint8)
    mask[0, first[0], first[1]] = 2
    labels = make_image(tmp_path / "mask.tif", mask)
    again = points(suggest_labels(image, model, str(tmp_path / "b.gpkg"), count=5, spacing=4.0,
                                  label_masks=[labels]).path)
    assert all(np.hypot(*np.subtract(pixel(image, s), first)) >= 1 for s in again)
    shifted = make_image(tmp_path / "off.tif", mask, origin=(630534.0 + 28.5, 228114.0))
    with pytest.raises(UserError, match="not on the pixel grid"):
        suggest_labels(image, model, str(tmp_path / "c.gpkg"), label_masks=[shifted])


def test_default_spacing_shrinks_on_small_scenes():
    assert default_spacing(10_000, 10_000, 30, 256) == 512
    assert default_spacing(100, 101, 30, 64) == pytest.approx((100 * 101 / 120) ** 0.5)


def test_loop_back_through_build_training_masks(plugin, nc_stack, nc_model, nc_mask, tmp_path):
    """The places, styled with a drop-down of the model's classes storing the training labels'
    codes; two of them filled in go into a new mask beside the polygons, with the same ids."""
    from qgis.core import QgsValueMapFieldFormatter, QgsVectorLayer

    result = processing.run("landcoverunet:suggestlabels", {
        "INPUT": str(nc_stack), "MODEL": str(nc_model), "COUNT": 8, "CLASS_FIELD": "id",
        "LABELS": [str(NC / "landsat96_polygons.shp")], "OUTPUT": str(tmp_path / "p.gpkg")})
    assert result["SITES"] == 8 and result["SPACING_USED"] > 0
    layer = QgsVectorLayer(result["OUTPUT"], "places", "ogr")
    assert layer.isValid() and layer.featureCount() == 8
    assert layer.renderer().type() == "graduatedSymbol"
    setup = layer.editorWidgetSetup(layer.fields().indexOf("id"))
    assert setup.type() == "ValueMap"
    assert [list(c.items())[0] for c in setup.config()["map"]] == \
        [(name, str(code)) for code, name in NC_NAMES.items()] + \
        [("(not labelled)", QgsValueMapFieldFormatter.NULL_VALUE)]
    sites = points(result["OUTPUT"])
    source = ogr.Open(result["OUTPUT"], 1)
    for feature in source.GetLayer(0):
        if feature.GetField("rank") in (1, 2):
            feature.SetField("id", {1: "3", 2: "6"}[feature.GetField("rank")])
            source.GetLayer(0).SetFeature(feature)
    source = None
    mask = processing.run("landcoverunet:buildmasks", {
        "INPUT": str(nc_stack), "VECTORS": [str(NC / "landsat96_polygons.shp"), result["OUTPUT"]],
        "CLASS_FIELD": "id", "CLASS_MAP": str(nc_mask), "OUTPUT": str(tmp_path / "m.tif")})
    values = read(mask["OUTPUT"])
    for site, code in zip(sites[:2], (3, 6)):
        assert values[pixel(str(nc_stack), site)] == code
    unfilled = [pixel(str(nc_stack), s) for s in sites[2:]]
    assert all(read(nc_mask)[w] == values[w] for w in unfilled)   # empty places stay unlabelled


def test_qgis_process_suggests(qgis_process_ready, scene, tmp_path):
    image, model, _ = scene
    answer = qgis_process_ready("landcoverunet:suggestlabels", {
        "INPUT": image, "MODEL": model, "COUNT": 5, "OUTPUT": tmp_path / "cli.gpkg"})
    assert answer["results"]["SITES"] == 5
    assert len(points(str(tmp_path / "cli.gpkg"))) == 5


def test_the_modeler_runs_it_after_training_inputs(plugin, nc_stack, nc_model, tmp_path):
    """A graphical-modeler model: image, model file and labels in, the places out."""
    from qgis.core import (QgsProcessingModelAlgorithm, QgsProcessingModelChildAlgorithm,
                           QgsProcessingModelChildParameterSource as Source,
                           QgsProcessingModelOutput, QgsProcessingModelParameter,
                           QgsProcessingParameterFile, QgsProcessingParameterRasterLayer,
                           QgsProcessingParameterVectorLayer)

    model = QgsProcessingModelAlgorithm("next_labels", "tests")
    for definition in (QgsProcessingParameterRasterLayer("image", "image"),
                       QgsProcessingParameterFile("model", "model"),
                       QgsProcessingParameterVectorLayer("labels", "labels")):
        model.addModelParameter(definition, QgsProcessingModelParameter(definition.name()))
    step = QgsProcessingModelChildAlgorithm("landcoverunet:suggestlabels")
    step.setChildId("suggest")
    for name, source in (("INPUT", Source.fromModelParameter("image")),
                         ("MODEL", Source.fromModelParameter("model")),
                         ("LABELS", Source.fromModelParameter("labels")),
                         ("COUNT", Source.fromStaticValue(6)),
                         ("CLASS_FIELD", Source.fromStaticValue("id"))):
        step.addParameterSources(name, [source])
    output = QgsProcessingModelOutput("places", "places")
    output.setChildId("suggest")
    output.setChildOutputName("OUTPUT")
    step.setModelOutputs({"places": output})
    model.addChildAlgorithm(step)
    assert model.validate()[0], model.validate()[1]
    results = processing.run(model, {
        "image": str(nc_stack), "model": str(nc_model),
        "labels": str(NC / "landsat96_polygons.shp"), "suggest:places": str(tmp_path / "m.gpkg")})
    assert len(points(results["suggest:places"])) == 6
