"""Runs inside a real QGIS desktop (``qgis --code``): the places to label over the map, and the
attribute form of the first one, as an analyst labels it.

Job (LANDCOVERUNET_DESKTOP_JOB): ``image``, ``model``, ``labels``, ``class_field``, ``folder``,
``findings`` and ``screenshot``. The map is classified, the places suggested and loaded; the
form of rank 1 opens and its class drop-down is read and opened; the main window with the form
is saved as the screenshot. QGIS is then closed without saving anything.
"""
import json
import os
import traceback

from qgis.core import QgsFeatureRequest, QgsProject, QgsVectorLayer
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QComboBox
from qgis.utils import iface

job = json.load(open(os.environ["LANDCOVERUNET_DESKTOP_JOB"]))
findings = {"errors": []}
form = None


def run_job() -> None:
    global form
    try:
        import processing

        iface.mainWindow().setGeometry(0, 0, 1500, 950)   # the screen (Xvfb: no window manager)
        processing.runAndLoadResults("landcoverunet:classifyraster", {
            "INPUT": job["image"], "MODEL": job["model"],
            "OUTPUT": os.path.join(job["folder"], "classified.tif")})
        results = processing.runAndLoadResults("landcoverunet:suggestlabels", {
            "INPUT": job["image"], "MODEL": job["model"], "LABELS": [job["labels"]],
            "CLASS_FIELD": job["class_field"], "COUNT": 30,
            "OUTPUT": os.path.join(job["folder"], "places.gpkg")})
        findings["sites"] = results["SITES"]
        layers = [layer for layer in QgsProject.instance().mapLayers().values()
                  if isinstance(layer, QgsVectorLayer)]
        findings["loaded"] = [layer.name() for layer in layers]
        layer = layers[0]
        findings["renderer"] = layer.renderer().type()
        findings["labels_on"] = layer.labelsEnabled()
        index = layer.fields().indexOf(job["class_field"])
        findings["widget"] = layer.editorWidgetSetup(index).type()
        first = next(layer.getFeatures(QgsFeatureRequest().setFilterExpression('"rank" = 1')))
        findings["first"] = {k: first[k] for k in ("rank", "predicted", "second")}
        iface.mapCanvas().setExtent(iface.activeLayer().extent())
        iface.mapCanvas().refreshAllLayers()
        layer.startEditing()
        form = iface.getFeatureForm(layer, first)
        form.show()
        form.resize(520, 300)
        form.move(900, 230)
        combos = [c for c in form.findChildren(QComboBox) if c.count() > 2]
        findings["choices"] = [combos[0].itemText(i) for i in range(combos[0].count())] \
            if combos else []
        if combos:   # opened as the analyst opens it to pick the class
            combos[0].setCurrentIndex(0)
            combos[0].showPopup()
    except Exception:
        findings["errors"].append(traceback.format_exc())
    QTimer.singleShot(5000, finish)


def finish() -> None:
    try:
        from qgis.PyQt.QtWidgets import QApplication

        screen = QApplication.primaryScreen()
        screen.grabWindow(0).save(job["screenshot"])   # the whole screen: window, form, list
    except Exception:
        findings["errors"].append(traceback.format_exc())
    with open(job["findings"], "w") as handle:
        json.dump(findings, handle, indent=2)
    QgsProject.instance().setDirty(False)
    os._exit(0)  # no "save project?" question, no exit-time teardown


QTimer.singleShot(2000, run_job)
