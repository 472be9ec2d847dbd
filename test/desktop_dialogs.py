"""Runs inside a real QGIS desktop (``qgis --code``): opens every algorithm's dialog, saves a
screenshot of each, and records what an analyst sees (help panel text, field pickers, labels).

The test writes a JSON job file and passes its path in LANDCOVERUNET_DESKTOP_JOB: layers to add
to the project, parameter values to set per algorithm, where to write the findings and the
screenshots. QGIS is then closed without saving anything.
"""
import faulthandler
import json
import os
import sys
import traceback

from qgis.core import QgsApplication, QgsProject, QgsRasterLayer, QgsVectorLayer
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QApplication, QTextBrowser
from qgis.utils import iface

job = json.load(open(os.environ["LANDCOVERUNET_DESKTOP_JOB"]))
findings = {"errors": [], "dialogs": {}}


def add_layers() -> dict:
    """Adds the job's layers to the project; returns {name: layer id}. QGIS is told not to ask
    which datum transformation to use (the sample's polygons are NAD83(HARN), its image NAD83):
    that question is a modal dialog that would stop the session."""
    from qgis.core import QgsSettings

    QgsSettings().setValue("projections/promptWhenMultipleTransformsExist", False,
                           QgsSettings.App)
    ids = {}
    for name, path in job["layers"].items():
        layer = QgsRasterLayer(path, name) if path.endswith((".tif", ".vrt")) \
            else QgsVectorLayer(path, name, "ogr")
        QgsProject.instance().addMapLayer(layer)
        ids[name] = layer.id()
    return ids


def inspect(algorithm, name: str, values: dict) -> dict:
    """Opens one dialog with ``values`` set, screenshots it as ``name``.png, returns what it
    shows."""
    import processing

    dialog = processing.createAlgorithmDialog(algorithm, values)
    dialog.resize(1100, 800)
    dialog.show()
    for _ in range(20):
        QApplication.processEvents()
    found = {}
    help_panel = dialog.findChild(QTextBrowser, "textShortHelp")
    found["help"] = help_panel.toPlainText() if help_panel is not None else ""
    panel = dialog.mainWidget()
    wrappers = getattr(panel, "wrappers", {})
    found["widgets"] = {}
    for parameter, wrapper in wrappers.items():
        widget = wrapper.wrappedWidget() if hasattr(wrapper, "wrappedWidget") else None
        widget = widget if widget is not None else getattr(wrapper, "widget", None)  # Python's
        entry = {"widget": type(widget).__name__ if widget is not None else None}
        if type(widget).__name__ in ("QgsFieldComboBox", "QComboBox"):
            entry["fields"] = [widget.itemText(i) for i in range(widget.count())]
            entry["value"] = widget.currentText()
        found["widgets"][parameter] = entry
    found["labels"] = sorted({label.text() for label in panel.findChildren(
        __import__("qgis.PyQt.QtWidgets", fromlist=["QLabel"]).QLabel) if label.text()})
    folder = job.get("screenshots")
    if folder:
        dialog.grab().save(os.path.join(folder, name + ".png"))
        if help_panel is not None:  # the rest of the help text, a page at a time
            bar = help_panel.verticalScrollBar()
            for page, value in enumerate(range(bar.pageStep(), bar.maximum() + bar.pageStep(),
                                               bar.pageStep()), start=2):
                bar.setValue(min(value, bar.maximum()))
                QApplication.processEvents()
                dialog.grab().save(os.path.join(folder, f"{name}_help_{page}.png"))
    dialog.close()
    return found


def modeler_class_fields(model) -> dict:
    """Opens the chain's Build training masks step in the modeler's own dialog (where the
    class-field drop-down offers the model's inputs), as editing it would, and returns where
    its class fields come from once the dialog gives the step back."""
    from processing.modeler.ModelerParametersDialog import ModelerParametersDialog

    found = {}
    for child_id, child in model.childAlgorithms().items():
        if child.algorithmId() != "landcoverunet:buildmasks":
            continue
        dialog = ModelerParametersDialog(child.algorithm(), model, child_id,
                                         child.configuration())
        dialog.show()
        for _ in range(10):
            QApplication.processEvents()
        edited = dialog.createAlgorithm()
        for name in ("CLASS_FIELD", "CLASS_NAME_FIELD"):
            before = child.parameterSources()[name][0]
            after = edited.parameterSources()[name][0]
            found[name] = {"before": [before.source(), before.parameterName()],
                           "after": [after.source(), after.parameterName()]}
        dialog.close()
    return found


def run_job() -> None:
    faulthandler.dump_traceback_later(240, exit=True)   # a hung dialog: say where, then end
    try:
        ids = add_layers()
        provider = QgsApplication.processingRegistry().providerById("landcoverunet")
        for algorithm in provider.algorithms():
            values = {k: ids.get(v, v) if isinstance(v, str) else [ids.get(x, x) for x in v]
                      for k, v in job["values"].get(algorithm.id(), {}).items()}
            print("dialog", algorithm.id(), file=sys.stderr, flush=True)
            try:
                findings["dialogs"][algorithm.id()] = inspect(algorithm.id(), algorithm.name(),
                                                              values)
            except Exception:
                findings["errors"].append(algorithm.id() + ": " + traceback.format_exc())
            with open(job["findings"], "w") as handle:   # written as it goes: a crash shows
                json.dump(findings, handle, indent=2)
        if job.get("model"):   # the model as "Add Model to Toolbox" leaves it
            model = QgsApplication.processingRegistry().algorithmById(job["model"])
            findings["model_loaded"] = model is not None
            findings["model_valid"] = list(model.validate())
            values = {k: ids.get(v, v) for k, v in job["model_values"].items()}
            findings["dialogs"]["model"] = inspect(job["model"], "land_cover_chain", values)
            findings["modeler_class_fields"] = modeler_class_fields(model)
    except Exception:
        findings["errors"].append(traceback.format_exc())
    with open(job["findings"], "w") as handle:
        json.dump(findings, handle, indent=2)
    QgsProject.instance().setDirty(False)
    os._exit(0)


QTimer.singleShot(2000, run_job)
