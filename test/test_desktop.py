"""QGIS desktop, for real: the plugin in a running QGIS under Xvfb, a result loaded and styled."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

from pathlib import Path

import pytest
from support import ROOT

SCREENSHOT_DIR = os.environ.get("LANDCOVERUNET_SCREENSHOT_DIR")


def run_desktop(tmp_path, algorithm: str, parameters: dict, output: str) -> dict:
    """Starts `qgis` with a fresh profile where the plugin is enabled, runs the job, returns
    what the session found."""
    job = {"algorithm": algorithm, "parameters": parameters, "output": output,
           "findings": str(tmp_path / "findings.json"),
           "screenshot": str(tmp_path / "qgis_desktop.png")}
    findings = run_session(tmp_path, "desktop_session.py", job)
    if SCREENSHOT_DIR and (tmp_path / "qgis_desktop.png").exists():
        shutil.copy(tmp_path / "qgis_desktop.png", SCREENSHOT_DIR)
    return findings


def run_session(tmp_path, script: str, job: dict, environ: dict | None = None) -> dict:
    """Runs ``test/<script>`` in `qgis` under Xvfb with a fresh profile where the plugin is
    enabled, with ``job`` in LANDCOVERUNET_DESKTOP_JOB (and ``environ`` added to the
    environment); returns the findings it wrote."""
    profiles = tmp_path / "profiles"
    settings = profiles / "profiles" / "default" / "QGIS"
    settings.mkdir(parents=True)
    (settings / "QGIS3.ini").write_text(
        "[PythonPlugins]\nlandcoverunet=true\n[qgis]\nshowTips=false\n"
        "checkVersion=false\n[UI]\nUI\\showTips=false\n")
    if job.get("model_file"):   # as "Add Model to Toolbox" leaves it
        models = profiles / "profiles" / "default" / "processing" / "models"
        models.mkdir(parents=True)
        shutil.copy(job["model_file"], models)
    (tmp_path / "job.json").write_text(json.dumps(job))
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    env["LANDCOVERUNET_DESKTOP_JOB"] = str(tmp_path / "job.json")
    env.update(environ or {})
    command = ["xvfb-run", "-a", "-s", "-screen 0 1500x950x24", "qgis", "--nologo",
               "--profiles-path", str(profiles), "--code", str(ROOT / "test" / script)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert Path(job["findings"]).exists(), done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(Path(job["findings"]).read_text())


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run is installed by setup")
def test_desktop_classification_loaded_with_palette(tmp_path, nc_stack, nc_model):
    from landcoverunet.backend.model.opened import open_model

    findings = run_desktop(tmp_path, "landcoverunet:classifyraster", {
        "INPUT": str(nc_stack), "MODEL": str(nc_model),
        "OUTPUT": str(tmp_path / "classified.tif")}, "OUTPUT")
    assert findings["errors"] == []
    assert findings["plugin_loaded"] and findings["provider"] == "Land Cover U-Net"
    assert {"landcoverunet:buildmasks", "landcoverunet:trainunet", "landcoverunet:classifyraster",
            "landcoverunet:classifybatch", "landcoverunet:accuracysample",
            "landcoverunet:assessaccuracy", "landcoverunet:exportmodel",
            "landcoverunet:suggestlabels"} <= \
        set(findings["algorithms"])
    assert findings["toolbox"] == {"1. Training": ["Build training masks", "Train U-Net",
                                                   "Where to digitise next"],
                                   "2. Mapping": ["Classify raster",
                                                  "Classify rasters in batch (dask)",
                                                  "Export model (ONNX)"],
                                   "3. Accuracy": ["Accuracy sample", "Assess accuracy"]}
    assert findings["menu_actions"][-1] == "landcoverunet_about"
    assert findings["loaded_layers"] == ["landsat_stack classified"]
    assert findings["in_layer_tree"] and findings["renderer"] == "paletted"
    classes = open_model(str(nc_model)).metadata.classes
    assert [(value, label) for value, _, label in findings["classes"]] == \
        [(c.id, c.name) for c in classes.classes]
    assert [colour for _, colour, _ in findings["classes"]] == [c.color for c in classes.classes]
    assert "forest" in findings["legend"] and "water" in findings["legend"]
    # opened from its file (a new project, a colleague), its legend shows what the model holds
    # (under QGIS's band heading): exactly its classes, no 0 and no unused entries
    heading, *entries = findings["legend_from_file"]
    assert heading.startswith("Band 1") and entries == [c.name for c in classes.classes]
    assert (tmp_path / "qgis_desktop.png").stat().st_size > 10000


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run is installed by setup")
def test_every_dialog_opens_and_shows_its_help_whole(plugin, tmp_path):
    """Every algorithm's dialog and the Land cover chain's open in the real desktop (a raster as
    Assess accuracy's reference must not crash it), show the whole help (every "<...>" phrase),
    the class fields are drop-downs of the chosen layers' fields, and the chain is valid with
    its class fields as field pickers. With
    LANDCOVERUNET_SCREENSHOT_DIR=docs/images the screenshots go to docs/images/dialogs."""
    import html
    import re

    from qgis.core import QgsApplication

    sample = ROOT / "resources" / "sample"
    shots = Path(SCREENSHOT_DIR) / "dialogs" if SCREENSHOT_DIR else tmp_path / "dialogs"
    shots.mkdir(parents=True, exist_ok=True)
    job = {"layers": {"image": str(sample / "nc_landsat7_2000.tif"),
                      "training": str(sample / "training_polygons.gpkg"),
                      "reference": str(sample / "reference_polygons.gpkg")},
           "values": {"landcoverunet:buildmasks": {"INPUT": "image",
                                                   "VECTORS": ["training", "reference"],
                                                   "CLASS_FIELD": "id",
                                                   "CLASS_NAME_FIELD": "label"},
                      "landcoverunet:trainunet": {"INPUT": "image"},
                      "landcoverunet:suggestlabels": {"INPUT": "image", "LABELS": ["training"],
                                                      "CLASS_FIELD": "id"},
                      "landcoverunet:classifyraster": {"INPUT": "image"},
                      "landcoverunet:assessaccuracy": {"REFERENCE": "image"}},
           "model_file": str(ROOT / "resources" / "land_cover_chain.model3"),
           "model": "model:Land cover chain",
           "model_values": {"image": "image", "labels": "training", "reference": "reference"},
           "findings": str(tmp_path / "findings.json"), "screenshots": str(shots)}
    findings = run_session(tmp_path, "desktop_dialogs.py", job)
    assert findings["errors"] == []
    provider = QgsApplication.processingRegistry().providerById("landcoverunet")
    assert set(findings["dialogs"]) == {*(a.id() for a in provider.algorithms()), "model"}
    for name in findings["dialogs"]:
        shot = "land_cover_chain" if name == "model" else name.split(":")[1]
        assert (shots / f"{shot}.png").stat().st_size > 10000
    for algorithm in provider.algorithms():
        shown = findings["dialogs"][algorithm.id()]["help"]
        for phrase in re.findall(r"<[a-z][a-z ]*>", html.unescape(algorithm.shortHelpString())):
            assert phrase in shown, (algorithm.id(), phrase)
    assert "<name>.cancelled.keras" in findings["dialogs"]["landcoverunet:trainunet"]["help"]
    assert "'Output folder'/<input name>_classes.tif" in \
        findings["dialogs"]["landcoverunet:classifybatch"]["help"]
    assert findings["model_loaded"] and findings["model_valid"] == [True, []]
    # the class fields are drop-downs of the chosen layers' fields (QGIS 3.22's own picker is
    # empty under several layers and crashes under a raster): two label layers' fields, once
    # each; none for a raster reference, where a name can still be typed
    masks = findings["dialogs"]["landcoverunet:buildmasks"]["widgets"]
    assert masks["CLASS_FIELD"] == {"widget": "QComboBox", "fields": ["", "fid", "id", "label"],
                                    "value": "id"}
    assert masks["CLASS_NAME_FIELD"]["value"] == "label"
    suggest = findings["dialogs"]["landcoverunet:suggestlabels"]["widgets"]
    assert suggest["CLASS_FIELD"]["fields"][-3:] == ["fid", "id", "label"]
    assert suggest["CLASS_FIELD"]["value"] == "id"
    accuracy = findings["dialogs"]["landcoverunet:assessaccuracy"]["widgets"]
    assert accuracy["CLASS_FIELD"] == {"widget": "QComboBox", "fields": [""], "value": ""}
    widgets = findings["dialogs"]["model"]["widgets"]
    assert widgets["labels_class"] == {"widget": "QComboBox", "fields": ["fid", "id", "label"],
                                       "value": "id"}   # a field picker of the chosen layer
    assert widgets["reference_names"]["value"] == "label"
    # editing the chain's masks step in the modeler keeps its class fields bound to the
    # model's inputs (the drop-down lists them there)
    fields = findings["modeler_class_fields"]
    assert set(fields) == {"CLASS_FIELD", "CLASS_NAME_FIELD"}
    assert all(f["after"] == f["before"] for f in fields.values()), fields


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run is installed by setup")
def test_places_to_label_load_styled_with_a_class_drop_down(tmp_path, nc_stack, nc_model):
    """Where to digitise next in the desktop: the places load over the map, darker where the
    model hesitates, numbered by rank; the attribute form of a place offers the model's
    classes in a drop-down (and an empty choice)."""
    from landcoverunet.backend.model.opened import open_model

    job = {"image": str(nc_stack), "model": str(nc_model),
           "labels": str(ROOT / "test" / "data" / "nc_landsat7_landcover" /
                         "landsat96_polygons.shp"),
           "class_field": "id", "folder": str(tmp_path),
           "findings": str(tmp_path / "findings.json"),
           "screenshot": str(tmp_path / "places_to_label.png")}
    findings = run_session(tmp_path, "desktop_suggest.py", job)
    assert findings["errors"] == []
    assert findings["sites"] == 30 and findings["loaded"] == ["landsat_stack places to label"]
    assert findings["renderer"] == "graduatedSymbol" and findings["labels_on"]
    assert findings["widget"] == "ValueMap" and findings["first"]["rank"] == 1
    names = open_model(str(nc_model)).metadata.classes.names
    # the classes in order, and one empty choice (QGIS 3.22 shows it as "Please select")
    assert [c for c in findings["choices"] if c in names] == names
    assert len(findings["choices"]) == len(names) + 1
    assert findings["first"]["predicted"] in names
    assert (tmp_path / "places_to_label.png").stat().st_size > 20000
    if SCREENSHOT_DIR:
        shutil.copy(tmp_path / "places_to_label.png", SCREENSHOT_DIR)


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run is installed by setup")
def test_missing_tensorflow_is_one_warning_on_load(tmp_path):
    """A QGIS where TensorFlow is not installed (hidden for real by test/hide_modules, as
    test_dependencies.py does): one message-bar warning on load, whose "Check installation" page
    names TensorFlow and the algorithms needing it and copies this system's command."""
    shots = Path(SCREENSHOT_DIR) / "dialogs" if SCREENSHOT_DIR else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    job = {"findings": str(tmp_path / "findings.json"),
           "screenshot": str(shots / "check_installation.png")}
    hide = str(ROOT / "test" / "hide_modules")
    findings = run_session(tmp_path, "desktop_load_check.py", job, {
        "LANDCOVERUNET_HIDE_MODULES": "tensorflow", "KERAS_BACKEND": "tensorflow",
        "KERAS_HOME": str(tmp_path / "keras"),
        "PYTHONPATH": hide + os.pathsep + os.environ.get("PYTHONPATH", "")})
    assert findings["errors"] == [] and findings["plugin_loaded"]
    ours = [w for w in findings["warnings"] if w["title"] == "Land Cover U-Net"]
    assert len(ours) == 1, findings["warnings"]
    assert ours[0]["text"].startswith("missing TensorFlow (the Keras backend in use): Train U-Net,")
    assert "Export model (ONNX)" in ours[0]["text"] and "Check installation" in ours[0]["buttons"]
    assert findings["page_visible"]
    assert "TensorFlow (the Keras backend in use)" in findings["page_text"]
    assert "Needed by: Train U-Net, Where to digitise next, Classify raster" in findings["page_text"]
    assert "Build training masks" in findings["page_text"]   # works without it
    assert findings["command"].endswith("-m pip install tensorflow-cpu==2.17.1")
    assert findings["clipboard"] == findings["command"]
    assert (shots / "check_installation.png").stat().st_size > 5000


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run is installed by setup")
def test_no_warning_on_load_when_everything_is_installed(tmp_path):
    """The same session with nothing hidden: the plugin pushes no warning."""
    job = {"findings": str(tmp_path / "findings.json")}
    findings = run_session(tmp_path, "desktop_load_check.py", job,
                           {"KERAS_BACKEND": "tensorflow"})
    assert findings["errors"] == [] and findings["plugin_loaded"]
    assert [w for w in findings["warnings"] if w["title"] == "Land Cover U-Net"] == []
