"""Classify raster through Processing, qgis_process and a real QGIS project."""
from __future__ import annotations

import os

import numpy as np
import pytest
from osgeo import gdal
from qgis import processing
from qgis.core import (QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback,
                       QgsProject)
from fixtures_classify import make_image, make_test_model, read, rgb

from landcoverunet.backend.core.class_map import ClassMap
from landcoverunet.backend.classify.outputs import FLOAT_NODATA
from landcoverunet.backend.model.opened import open_model

ALG = "landcoverunet:classifyraster"


def nc_model_path(request) -> str:
    """The session's model trained on the NC scene (fixture ``nc_model``), or skip."""
    try:
        model = request.getfixturevalue("nc_model")
    except pytest.FixtureLookupError:
        pytest.skip("the nc_model fixture (Train U-Net) is not available yet")
    for attribute in ("path", "model_path", "model"):
        if isinstance(getattr(model, attribute, None), (str, os.PathLike)):
            model = getattr(model, attribute)
            break
    if isinstance(model, dict):
        model = model.get("OUTPUT_MODEL") or model.get("path")
    if isinstance(model, (tuple, list)):
        model = model[0]
    return str(model)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> str:
    """Random weights, 3 bands, 4 classes: for checks where only the plumbing matters."""
    return make_test_model(tmp_path_factory.mktemp("model") / "tiny.keras", bands=3, classes=4,
                           mean=[100, 100, 100], std=[50, 50, 50],
                           names={1: "water", 2: "forest", 3: "crops", 4: "urban"})


def check_nc_outputs(stack, model: str, classes_path, confidence_path,
                     probabilities_path) -> None:
    """Same grid as the input, classes only from the model, palette and names, sane values."""
    metadata = open_model(model).metadata
    image, classified = gdal.Open(str(stack)), gdal.Open(str(classes_path))
    assert classified.GetGeoTransform() == image.GetGeoTransform()
    assert (classified.RasterXSize, classified.RasterYSize) == (image.RasterXSize,
                                                                 image.RasterYSize)
    classes = classified.ReadAsArray()
    model_ids = [c["id"] for c in metadata.class_map["classes"]]
    assert set(np.unique(classes)) <= {0, *model_ids}
    valid = classes > 0
    assert valid.sum() > 0.5 * classes.size
    pixels = image.ReadAsArray().astype(np.float32)
    nodata = [image.GetRasterBand(b).GetNoDataValue() for b in metadata.bands]
    invalid = np.zeros(classes.shape, bool)
    for band, missing in zip(metadata.bands, nodata):
        invalid |= pixels[band - 1] == missing
    assert np.array_equal(valid, ~invalid), "image nodata <=> class 0"
    band = classified.GetRasterBand(1)
    assert band.DataType == gdal.GDT_Byte and band.GetNoDataValue() == 0
    assert band.GetOverviewCount() >= 1
    file_classes = ClassMap.read_from_raster(str(classes_path))
    assert file_classes.to_dict() == ClassMap.from_dict(metadata.class_map).to_dict()
    table = band.GetColorTable()
    band.GetDefaultRAT()  # GDAL 3.6 loads the category names from the sidecar lazily
    names = band.GetCategoryNames()
    for c in file_classes.classes:
        assert table.GetColorEntry(c.id)[:3] == tuple(int(c.color[i:i + 2], 16)
                                                      for i in (1, 3, 5))
        assert names[c.id] == c.name
    confidence = read(confidence_path)
    assert (confidence[~valid] == FLOAT_NODATA).all()
    assert ((confidence[valid] >= 1.0 / len(model_ids) - 1e-5) & (confidence[valid] <= 1)).all()
    probabilities = read(probabilities_path)
    assert probabilities.shape[0] == len(model_ids)
    assert np.allclose(probabilities[:, valid].sum(axis=0), 1.0, atol=1e-4)
    assert np.allclose(probabilities[:, valid].max(axis=0), confidence[valid], atol=1e-6)


def test_nc_scene_through_processing_run(plugin, nc_stack, request, tmp_path):
    model = nc_model_path(request)
    outputs = {name: str(tmp_path / f"{name}.tif") for name in ("classes", "conf", "prob")}
    result = processing.run(ALG, {"INPUT": str(nc_stack), "MODEL": model,
                                  "OUTPUT": outputs["classes"],
                                  "OUTPUT_CONFIDENCE": outputs["conf"],
                                  "OUTPUT_PROBABILITIES": outputs["prob"]})
    assert result["OUTPUT"] == outputs["classes"]
    assert result["CLASS_COUNT"] == len(open_model(model).metadata.class_map["classes"])
    check_nc_outputs(nc_stack, model, *outputs.values())
    assert sorted(os.listdir(tmp_path)) == ["classes.qml", "classes.tif", "classes.tif.aux.xml",
                                            "conf.tif", "prob.tif"]   # the style beside the map


def test_nc_scene_through_qgis_process(qgis_process_ready, nc_stack, request, tmp_path):
    model = nc_model_path(request)
    answer = qgis_process_ready(ALG, {
        "INPUT": nc_stack, "MODEL": model, "OVERLAP": 8, "BATCH_SIZE": 4, "TTA": 1,
        "OUTPUT": tmp_path / "classes.tif", "OUTPUT_CONFIDENCE": tmp_path / "conf.tif",
        "OUTPUT_PROBABILITIES": tmp_path / "prob.tif"})
    results = answer["results"]
    assert results["CLASS_COUNT"] == len(open_model(model).metadata.class_map["classes"])
    assert results["OUTPUT"] == str(tmp_path / "classes.tif")
    check_nc_outputs(nc_stack, model, tmp_path / "classes.tif", tmp_path / "conf.tif",
                     tmp_path / "prob.tif")


def test_loaded_layer_gets_palette_and_names_in_project(plugin, tiny_model, tmp_path):
    """Run and load as the dialog does: the post-processor styles the layer on completion."""
    image = make_image(tmp_path / "riverside.tif", rgb(70, 90))
    project = QgsProject.instance()
    context = QgsProcessingContext()
    context.setProject(project)
    before = set(project.mapLayers())
    result = processing.runAndLoadResults(
        ALG, {"INPUT": image, "MODEL": tiny_model, "OUTPUT": str(tmp_path / "classes.tif")},
        context=context)
    added = [project.mapLayer(i) for i in set(project.mapLayers()) - before]
    try:
        assert len(added) == 1
        layer = added[0]
        assert layer.name() == "riverside classified"
        assert os.path.samefile(layer.source(), result["OUTPUT"])
        renderer = layer.renderer()
        assert renderer.type() == "paletted"
        palette = {c.value: (c.label, c.color.name()) for c in renderer.classes()}
        expected = ClassMap.from_dict(open_model(tiny_model).metadata.class_map)
        assert palette == {c.id: (c.name, c.color) for c in expected.classes}
        assert {c.label for c in renderer.classes()} == {"water", "forest", "crops", "urban"}
    finally:
        project.removeMapLayers([layer.id() for layer in added])


def test_map_opened_from_its_file_shows_exactly_its_classes(plugin, tiny_model, tmp_path):
    """Opened outside Processing (a new project, a colleague), the map and its polygons use the
    .qml written beside them: a legend of the classes, not the 256-entry GeoTIFF colour table."""
    from qgis.core import QgsRasterLayer, QgsVectorLayer

    image = make_image(tmp_path / "riverside.tif", rgb(70, 90))
    result = processing.run(ALG, {"INPUT": image, "MODEL": tiny_model,
                                  "OUTPUT": str(tmp_path / "classes.tif"),
                                  "OUTPUT_VECTOR": str(tmp_path / "classes.gpkg")})
    assert (tmp_path / "classes.qml").is_file()
    layer = QgsRasterLayer(result["OUTPUT"], "opened from file")
    expected = ClassMap.from_dict(open_model(tiny_model).metadata.class_map)
    assert layer.renderer().type() == "paletted"
    assert [(c.value, c.label) for c in layer.renderer().classes()] == \
        [(c.id, c.name) for c in expected.classes]
    polygons = QgsVectorLayer(result["OUTPUT_VECTOR"], "opened from file", "ogr")
    assert polygons.renderer().type() == "categorizedSymbol"
    assert [c.label() for c in polygons.renderer().categories()] == expected.names


def test_extent_in_another_crs(plugin, tiny_model, tmp_path):
    """An extent given in degrees is transformed to the image's CRS and snapped to its pixels."""
    from osgeo import osr

    image = make_image(tmp_path / "image.tif", rgb(100, 120))  # EPSG:32119, 28.5 m pixels
    x0, y0 = 630534.0 + 20 * 28.5, 228114.0 - 70 * 28.5
    source, target = osr.SpatialReference(), osr.SpatialReference()
    source.ImportFromEPSG(32119)
    target.ImportFromEPSG(4326)
    target.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    transform = osr.CoordinateTransformation(source, target)
    (lon0, lat0, _), (lon1, lat1, _) = (transform.TransformPoint(x0 + 5, y0 + 5),
                                        transform.TransformPoint(x0 + 40 * 28.5 - 5,
                                                                 y0 + 30 * 28.5 - 5))
    result = processing.run(ALG, {
        "INPUT": image, "MODEL": tiny_model, "OUTPUT": str(tmp_path / "part.tif"),
        "EXTENT": f"{lon0},{lon1},{lat0},{lat1} [EPSG:4326]"})
    part = gdal.Open(result["OUTPUT"])
    assert abs(part.RasterXSize - 40) <= 2 and abs(part.RasterYSize - 30) <= 2
    assert abs(part.GetGeoTransform()[0] - x0) <= 2 * 28.5
    assert (read(result["OUTPUT"]) > 0).all()


def test_band_mismatch_is_a_clear_error_with_no_output(plugin, nc_stack, tiny_model, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(QgsProcessingException, match="trained on an image with 3 bands"):
        processing.run(ALG, {"INPUT": str(nc_stack), "MODEL": tiny_model,
                             "OUTPUT": str(out / "classes.tif"),
                             "OUTPUT_CONFIDENCE": str(out / "conf.tif")})
    assert not out.exists() or os.listdir(out) == []


def test_not_a_model_file_is_a_clear_error(plugin, tmp_path):
    image = make_image(tmp_path / "image.tif", rgb(20, 20))
    with pytest.raises(QgsProcessingException, match="not a model trained by Land Cover"):
        processing.run(ALG, {"INPUT": image, "MODEL": image,
                             "OUTPUT": str(tmp_path / "out.tif")})


def test_cancel_leaves_no_output(plugin, tiny_model, tmp_path):
    image = make_image(tmp_path / "image.tif", rgb(200, 200))
    out = tmp_path / "out"
    feedback = QgsProcessingFeedback()
    feedback.cancel()
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        processing.run(ALG, {"INPUT": image, "MODEL": tiny_model,
                             "OUTPUT": str(out / "classes.tif"),
                             "OUTPUT_PROBABILITIES": str(out / "prob.tif")}, feedback=feedback)
    assert not out.exists() or os.listdir(out) == []
