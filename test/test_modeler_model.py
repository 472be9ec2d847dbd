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
    from landcoverunet.backend.core.model_file import read_metadata

    answer = qgis_process_ready(str(MODEL), {
        "image": SAMPLE / "nc_landsat7_2000.tif", "polygons": SAMPLE / "training_polygons.gpkg",
        "class_field": "id", "class_name_field": "label", "epochs": 2,
        "trainunet:model": tmp_path / "model.keras",
        "trainunet:report": tmp_path / "report.html",
        "classifyraster:classified": tmp_path / "classified.tif"})
    results = answer["results"]
    assert results["trainunet:model"] == str(tmp_path / "model.keras")
    metadata = read_metadata(str(tmp_path / "model.keras"))
    assert metadata.classes.names[:2] == ["developed", "agriculture"]
    classified = gdal.Open(str(tmp_path / "classified.tif"))
    values = classified.ReadAsArray()
    assert values.shape == (443, 489)
    assert set(np.unique(values)) <= {0, *metadata.classes.ids}
    assert ClassMap.read_from_raster(str(tmp_path / "classified.tif")) == metadata.classes
    assert (tmp_path / "report.html").stat().st_size > 10000


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
