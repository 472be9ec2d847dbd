"""The graphical-modeler chain in resources/ runs headless with qgis_process.bin."""
from __future__ import annotations

from xml.etree.ElementTree import canonicalize

import numpy as np
from osgeo import gdal
from support import ROOT

MODEL = ROOT / "resources" / "land_cover_chain.model3"
SAMPLE = ROOT / "resources" / "sample"


def test_model_chain_runs_with_qgis_process(qgis_process_ready, tmp_path):
    from landcoverunet.backend.core.class_map import ClassMap
    from landcoverunet.backend.model.opened import open_model

    answer = qgis_process_ready(str(MODEL), {
        "image": SAMPLE / "nc_landsat7_2000.tif", "labels": SAMPLE / "training_polygons.gpkg",
        "labels_class": "id", "labels_names": "label", "max_epochs": 2,
        "reference": SAMPLE / "reference_polygons.gpkg", "reference_class": "id",
        "reference_names": "label",
        "trainunet:model": tmp_path / "model.keras",
        "trainunet:report": tmp_path / "report.html",
        "classifyraster:classified": tmp_path / "classified.tif",
        "assessaccuracy:accuracy": tmp_path / "accuracy.html"})
    results = answer["results"]
    assert "Overall accuracy" in (tmp_path / "accuracy.html").read_text(encoding="utf-8")
    assert results["trainunet:model"] == str(tmp_path / "model.keras")
    metadata = open_model(str(tmp_path / "model.keras")).metadata
    from landcoverunet.backend.core.version import plugin_version
    assert metadata.plugin_version == plugin_version() != "unknown"
    assert metadata.classes.names[:2] == ["developed", "agriculture"]
    classified = gdal.Open(str(tmp_path / "classified.tif"))
    values = classified.ReadAsArray()
    assert values.shape == (443, 489)
    assert set(np.unique(values)) <= {0, *metadata.classes.ids}
    assert ClassMap.read_from_raster(str(tmp_path / "classified.tif")) == metadata.classes
    assert (tmp_path / "report.html").stat().st_size > 10000


def test_model_is_valid_ordered_and_helped(plugin):
    """The model opens without red boxes (every child parameter set), lists its inputs in the
    order they are filled in (3.22 sorts them by name), ends in Assess accuracy, and explains
    every input."""
    from qgis.core import QgsProcessingModelAlgorithm, QgsProcessingParameterField

    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(str(MODEL))
    assert model.validate() == (True, [])
    assert model.displayName() == "Land cover chain"
    inputs = [p for p in model.parameterDefinitions() if not p.isDestination()]
    assert [p.name() for p in inputs] == ["image", "labels", "labels_class", "labels_names",
                                          "max_epochs", "reference", "reference_class",
                                          "reference_names"]
    for parameter in inputs:
        assert parameter.help() and parameter.help() in model.shortHelpString(), parameter.name()
        if isinstance(parameter, QgsProcessingParameterField):   # after its layer, never fid
            parent = parameter.parentLayerParameterName()
            assert [p.name() for p in inputs].index(parent) < inputs.index(parameter)
            assert parameter.defaultValue() in ("id", "label")
    assert "assessaccuracy" in model.childAlgorithms()
    assert {p.name() for p in model.destinationParameterDefinitions()} == {
        "trainunet:model", "trainunet:report", "classifyraster:classified",
        "assessaccuracy:accuracy"}


def test_qgis_process_help_lists_the_model_inputs(qgis_process_ready):
    """What the README tells users to run to see the inputs (``run ... -- --help`` lists none)."""
    from support import qgis_process

    done = qgis_process("help", str(MODEL))
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("image", "labels_class", "reference_names", "trainunet:model"):
        assert name in done.stdout, name


def test_model_file_is_the_generated_one(plugin, tmp_path):
    """resources/land_cover_chain.model3 matches scripts/make_model.py (regenerate if not)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_model", ROOT / "scripts" / "make_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.build_model().toFile(str(tmp_path / "fresh.model3"))
    # Qt writes XML attributes in a random order: compare canonical forms.
    assert canonicalize(from_file=str(tmp_path / "fresh.model3")) == \
        canonicalize(from_file=str(MODEL)), \
        "resources/land_cover_chain.model3 is stale: run scripts/make_model.py"
