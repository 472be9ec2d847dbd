"""Train U-Net through Processing and qgis_process on the real NC scene; errors; cancel; resume."""
from __future__ import annotations

import base64
import csv
import io
import os
import re

import numpy as np
import pytest
from osgeo import gdal
from qgis import processing
from qgis.core import QgsProcessingException, QgsProcessingFeedback

from fixtures_training import ALG, TINY, CancelAfterFirstEpoch
from support import NC


def pictures(report: str) -> list[np.ndarray]:
    """The PNG pictures embedded in a report, decoded."""
    import matplotlib.image

    found = re.findall(r'src="data:image/png;base64,([^"]+)"', report)
    return [matplotlib.image.imread(io.BytesIO(base64.b64decode(data)), format="png")
            for data in found]


@pytest.mark.slow
def test_nc_end_to_end_through_processing(plugin, nc_stack, nc_mask, tmp_path):
    model = tmp_path / "nc.keras"
    result = processing.run(ALG, dict(
        INPUT=str(nc_stack), MASK=str(nc_mask), OUTPUT_MODEL=str(model),
        OUTPUT_REPORT=str(tmp_path / "report.html"), TENSORBOARD_DIR=str(tmp_path / "tb"),
        **TINY))
    assert result["OUTPUT_MODEL"] == str(model) and model.is_file()
    assert result["EPOCHS_RUN"] == 2 and 0 < result["BEST_VAL_MIOU"] <= 1
    assert result["VAL_MIOU_LOW"] <= result["VAL_MIOU"] <= result["VAL_MIOU_HIGH"]
    assert 0 < result["FOREST_VAL_MIOU"] <= 1   # the teacher, scored beside the network
    from landcoverunet.backend.training.choice import CANDIDATES, FOREST_NETWORK
    assert result["MODEL_HOLDS"] in CANDIDATES

    from landcoverunet.backend.model.opened import open_model
    metadata = open_model(str(model)).metadata
    assert metadata.bands == [1, 2, 3, 4, 5, 6] and metadata.classes.ids == list(range(1, 8))
    assert metadata.metrics["best_val_miou"] == pytest.approx(result["BEST_VAL_MIOU"], abs=1e-4)
    from landcoverunet.models.unet import PRESETS
    assert metadata.tile_size == 64
    if result["MODEL_HOLDS"] != FOREST_NETWORK:  # the U-Net, alone or averaged
        assert metadata.architecture["depth"] == PRESETS["small"].depth
        assert metadata.architecture["spectral"] == PRESETS["small"].spectral > 0
    assert metadata.metrics["written"] == result["MODEL_HOLDS"]
    # whole polygons validate (agriculture's one polygon lies outside band 7's footprint); with
    # so few polygons, by cross-validation: each polygon is held out by one of 3 runs
    assert metadata.metrics["final_fit"] is True
    assert metadata.metrics["cross_validation_folds"] == 3
    assert metadata.metrics["validation_features"] == metadata.metrics["features"] >= 20
    assert metadata.metrics["not_validated"] == []

    with open(result["OUTPUT_CSV"], newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert result["OUTPUT_CSV"] == str(tmp_path / "nc_epochs.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert {"loss", "val_loss", "val_miou", "val_iou_forest", "seconds"} <= set(rows[0])
    assert max(float(r["val_miou"]) for r in rows) == pytest.approx(result["BEST_VAL_MIOU"],
                                                                     abs=1e-4)

    report = (tmp_path / "report.html").read_text(encoding="utf-8")
    images = pictures(report)
    assert len(images) == 4, "curves, reliability diagram, confusion matrix, validation tiles"
    assert all(i.ndim == 3 and i.shape[0] > 100 and i.shape[1] > 100 for i in images)
    for text in ("Per-class scores", "confusion matrix", "Validation tiles", "water",
                 "sediment", "precision", "recall", "held out whole", "final fit",
                 "3-fold cross-validation",
                 f"polygons training never saw: {result['VAL_MIOU']:.3f}",
                 "Validation on your labels", "forest "):
        assert text in report
    events = [f for _, _, files in os.walk(tmp_path / "tb") for f in files
              if f.startswith("events.out.tfevents")]
    assert events


def test_qgis_process_run(qgis_process_ready, nc_stack, nc_mask, tmp_path):
    answer = qgis_process_ready(ALG, {
        "INPUT": nc_stack, "MASK": nc_mask, "OUTPUT_MODEL": tmp_path / "m.keras",
        "OUTPUT_REPORT": tmp_path / "m.html", "EPOCHS": 1, "STEPS_PER_EPOCH": 2,
        "TILE_SIZE": 64, "BATCH_SIZE": 2, "MODEL_SIZE": 0, "BANDS": 4})
    results = answer["results"]
    assert results["EPOCHS_RUN"] == 1 and 0 <= results["BEST_VAL_MIOU"] <= 1
    from landcoverunet.backend.model.opened import open_model
    assert open_model(str(tmp_path / "m.keras")).metadata.bands == [4]
    assert (tmp_path / "m.html").is_file() and (tmp_path / "m_epochs.csv").is_file()


def test_temporary_model_is_kept_beside_the_image(plugin, nc_stack, nc_mask, tmp_path):
    """A model (and report) left to QGIS's default temporary file is written beside the training
    image under a name that replaces nothing, and records the plugin's version."""
    from qgis.core import QgsProcessing

    from landcoverunet.backend.model.opened import open_model
    from landcoverunet.backend.core.version import read_metadata as plugin_metadata

    image = tmp_path / "scene.vrt"
    gdal.Translate(str(image), str(nc_stack), format="VRT")
    (tmp_path / "scene_unet.keras").write_text("an earlier model")
    feedback = QgsProcessingFeedback()
    result = processing.run(ALG, dict(
        INPUT=str(image), MASK=str(nc_mask), OUTPUT_MODEL=QgsProcessing.TEMPORARY_OUTPUT,
        OUTPUT_REPORT=QgsProcessing.TEMPORARY_OUTPUT, TEACHER=False, FINAL_FIT=False,
        **{**TINY, "EPOCHS": 1, "STEPS_PER_EPOCH": 2}), feedback=feedback)
    kept = tmp_path / "scene_unet_2.keras"
    assert result["OUTPUT_MODEL"] == str(kept) and kept.is_file()
    assert result["OUTPUT_REPORT"] == str(tmp_path / "scene_unet_2_report.html")
    assert (tmp_path / "scene_unet_2_report.html").stat().st_size > 1000
    assert (tmp_path / "scene_unet.keras").read_text() == "an earlier model"
    assert str(kept) in feedback.textLog()
    assert open_model(str(kept)).metadata.plugin_version == \
        plugin_metadata().get("general", "version") != "unknown"


@pytest.mark.slow
def test_cancel_keeps_best_model_and_init_model_resumes(plugin, nc_stack, nc_mask, tmp_path):
    feedback = CancelAfterFirstEpoch()
    first = tmp_path / "first.keras"
    result = processing.run(ALG, dict(INPUT=str(nc_stack), MASK=str(nc_mask),
                                      OUTPUT_MODEL=str(first), **{**TINY, "EPOCHS": 20}),
                            feedback=feedback)
    from landcoverunet.backend.model.opened import load_model, open_model
    cancelled = tmp_path / "first.cancelled.keras"   # a cancelled run writes beside the output
    assert result["OUTPUT_MODEL"] == str(cancelled) and cancelled.is_file()
    assert not first.exists() and result["EPOCHS_RUN"] <= 2
    assert result["OUTPUT_CSV"] == str(tmp_path / "first.cancelled_epochs.csv")
    metadata = open_model(str(cancelled)).metadata
    assert metadata.metrics["cancelled"] is True
    assert "best so far" in feedback.textLog() and "first.cancelled.keras" in feedback.textLog()
    assert "Cancelled, and kept" in feedback.textLog()   # before QGIS's red "Execution failed"
    model, _ = load_model(str(cancelled))
    assert model.output_shape[-1] == 7

    second = tmp_path / "second.keras"
    resumed = processing.run(ALG, dict(INPUT=str(nc_stack), MASK=str(nc_mask),
                                       OUTPUT_MODEL=str(second), INIT_MODEL=str(cancelled),
                                       MODEL_SIZE=1, **{**TINY, "EPOCHS": 1}))
    again = open_model(str(second)).metadata
    assert resumed["EPOCHS_RUN"] == 1
    assert again.metrics["init_model"] == "first.cancelled.keras"
    assert again.mean == metadata.mean and again.architecture == metadata.architecture


# ----- errors: clear, and no model file -------------------------------------------------------
def _variant(source, path, change) -> str:
    """A copy of a mask with its labels changed by ``change(array)``."""
    dataset = gdal.GetDriverByName("GTiff").CreateCopy(str(path), gdal.Open(str(source)))
    band = dataset.GetRasterBand(1)
    band.WriteArray(change(band.ReadAsArray()))
    dataset = None
    return str(path)


@pytest.fixture
def bad_inputs(nc_stack, nc_mask, tmp_path):
    no_labels = _variant(nc_mask, tmp_path / "empty.tif", lambda a: a * 0)
    one_class = _variant(nc_mask, tmp_path / "one.tif", lambda a: np.where(a > 0, 5, 0))
    cropped = str(tmp_path / "cropped.tif")
    gdal.Translate(cropped, str(nc_mask), srcWin=[0, 0, 300, 300])
    text_classes = str(tmp_path / "text_classes.tif")
    from landcoverunet.backend.masks.burn import build_mask
    from landcoverunet.backend.masks.features import VectorInput
    build_mask(str(nc_stack), [VectorInput(str(NC / "landsat96_polygons.shp"))], text_classes,
               class_field="label")
    return dict(no_labels=no_labels, one_class=one_class, cropped=cropped,
                text_classes=text_classes)


def test_bad_inputs_are_clear_errors_and_leave_no_model(plugin, nc_stack, nc_mask, nc_model,
                                                        bad_inputs, tmp_path, monkeypatch):
    out = tmp_path / "out"
    cases = [
        (dict(MASK=bad_inputs["no_labels"]), "no labelled pixel"),
        (dict(MASK=bad_inputs["one_class"]), "Only one class"),
        (dict(MASK=bad_inputs["cropped"]), "not on the pixel grid.*Build training masks"),
        (dict(BANDS=[1, 9]), r"Band number\(s\) 9 are out of range"),
        (dict(EXTRA_IMAGES=[str(NC / "lsat7_2000_10.tif")], EXTRA_MASKS=[str(nc_mask)]),
         "has 1 bands but"),
        (dict(INIT_MODEL=str(nc_model), BANDS=[1, 2, 3]), "trained on bands"),
        (dict(INIT_MODEL=str(nc_model), MASK=bad_inputs["text_classes"]),
         "predicts classes"),
    ]
    for changes, message in cases:
        parameters = dict(INPUT=str(nc_stack), MASK=str(nc_mask),
                          OUTPUT_MODEL=str(out / "model.keras"), **TINY)
        parameters.update(changes)
        with pytest.raises(QgsProcessingException, match=message):
            processing.run(ALG, parameters)
        assert not out.exists() or not [f for f in os.listdir(out) if f.endswith(".keras")]

    import landcoverunet.backend.core.deps as deps
    monkeypatch.setattr(deps, "keras_available", lambda: False)
    with pytest.raises(QgsProcessingException, match="Keras 3.14 or later is not installed in the Python that QGIS runs"):
        processing.run(ALG, dict(INPUT=str(nc_stack), MASK=str(nc_mask),
                                 OUTPUT_MODEL=str(out / "model.keras"), **TINY))
    assert not out.exists() or os.listdir(out) == []


def test_algorithm_defaults_suit_real_scenes(plugin):
    from qgis.core import QgsApplication
    algorithm = QgsApplication.processingRegistry().algorithmById(ALG)
    defaults = {p.name(): p.defaultValue() for p in algorithm.parameterDefinitions()}
    from landcoverunet.backend.training.config import config_default
    assert defaults["TILE_SIZE"] == config_default("tile_size") == 64
    assert defaults["VALIDATION_FRACTION"] == 0.2 and defaults["MODEL_SIZE"] == 0
    assert defaults["LOSS"] == 1 and defaults["AUGMENT"] is True
    assert defaults["STEPS_PER_EPOCH"] == 0 and defaults["PATIENCE"] >= 5
    assert not int(algorithm.flags()) & int(algorithm.FlagNoThreading), "background task"


def test_the_dialog_limits_are_the_backend_ranges(plugin):
    """What the dialog lets a user type is what the backend accepts (``config.RANGES``)."""
    from qgis.core import QgsApplication

    from landcoverunet.backend.training.config import RANGES

    algorithm = QgsApplication.processingRegistry().algorithmById(ALG)
    for name, (low, high) in RANGES.items():
        parameter = algorithm.parameterDefinition(name.upper())
        if parameter is None:  # not in the dialog (workers)
            continue
        assert parameter.minimum() == low, name
        if high is not None:
            assert parameter.maximum() == high, name
