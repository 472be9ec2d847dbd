"""QGIS desktop, for real: the plugin in a running QGIS under Xvfb, a result loaded and styled."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from support import ROOT

SCREENSHOT_DIR = os.environ.get("LANDCOVERUNET_SCREENSHOT_DIR")


def run_desktop(tmp_path, algorithm: str, parameters: dict, output: str) -> dict:
    """Starts `qgis` with a fresh profile where the plugin is enabled, runs the job, returns
    what the session found."""
    profiles = tmp_path / "profiles"
    settings = profiles / "profiles" / "default" / "QGIS"
    settings.mkdir(parents=True)
    (settings / "QGIS3.ini").write_text(
        "[PythonPlugins]\nlandcoverunet=true\n[qgis]\nshowTips=false\n"
        "checkVersion=false\n[UI]\nUI\\showTips=false\n")
    job = {"algorithm": algorithm, "parameters": parameters, "output": output,
           "findings": str(tmp_path / "findings.json"),
           "screenshot": str(tmp_path / "qgis_desktop.png")}
    (tmp_path / "job.json").write_text(json.dumps(job))
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    env["LANDCOVERUNET_DESKTOP_JOB"] = str(tmp_path / "job.json")
    command = ["xvfb-run", "-a", "-s", "-screen 0 1500x950x24", "qgis", "--nologo",
               "--profiles-path", str(profiles), "--code", str(ROOT / "test" / "desktop_session.py")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert (tmp_path / "findings.json").exists(), done.stdout[-3000:] + done.stderr[-3000:]
    findings = json.loads((tmp_path / "findings.json").read_text())
    if SCREENSHOT_DIR and (tmp_path / "qgis_desktop.png").exists():
        shutil.copy(tmp_path / "qgis_desktop.png", SCREENSHOT_DIR)
    return findings


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run is installed by setup")
def test_desktop_classification_loaded_with_palette(tmp_path, nc_stack, nc_model):
    from landcoverunet.backend.core.model_file import read_metadata

    findings = run_desktop(tmp_path, "landcoverunet:classifyraster", {
        "INPUT": str(nc_stack), "MODEL": str(nc_model),
        "OUTPUT": str(tmp_path / "classified.tif")}, "OUTPUT")
    assert findings["errors"] == []
    assert findings["plugin_loaded"] and findings["provider"] == "Land Cover U-Net"
    assert {"landcoverunet:buildmasks", "landcoverunet:trainunet", "landcoverunet:classifyraster",
            "landcoverunet:classifybatch", "landcoverunet:accuracysample",
            "landcoverunet:assessaccuracy", "landcoverunet:exportmodel"} <= \
        set(findings["algorithms"])
    assert findings["toolbox"] == {"1. Training": ["Build training masks", "Train U-Net"],
                                   "2. Mapping": ["Classify raster",
                                                  "Classify rasters in batch (dask)",
                                                  "Export model (ONNX)"],
                                   "3. Accuracy": ["Accuracy sample", "Assess accuracy"]}
    assert findings["menu_actions"][-1] == "landcoverunet_about"
    assert findings["loaded_layers"] == ["landsat_stack classified"]
    assert findings["in_layer_tree"] and findings["renderer"] == "paletted"
    classes = read_metadata(str(nc_model)).classes
    assert [(value, label) for value, _, label in findings["classes"]] == \
        [(c.id, c.name) for c in classes.classes]
    assert [colour for _, colour, _ in findings["classes"]] == [c.color for c in classes.classes]
    assert "forest" in findings["legend"] and "water" in findings["legend"]
    assert (tmp_path / "qgis_desktop.png").stat().st_size > 10000
