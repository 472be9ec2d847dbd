"""Runs inside a real QGIS desktop (``qgis --code``): runs one algorithm, loads its result, checks.

The test writes a JSON job file and passes its path in LANDCOVERUNET_DESKTOP_JOB: algorithm,
parameters, the output key to inspect, where to write the findings and the screenshot. The
findings are read by test_desktop.py; QGIS is then closed without saving anything.
"""
import json
import os
import traceback

from qgis.core import QgsApplication, QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import QTimer
from qgis.utils import iface, plugins

job = json.load(open(os.environ["LANDCOVERUNET_DESKTOP_JOB"]))
findings = {"errors": []}


def run_job() -> None:
    try:
        import processing

        findings["plugin_loaded"] = "landcoverunet" in plugins
        provider = QgsApplication.processingRegistry().providerById("landcoverunet")
        findings["provider"] = provider.name() if provider else None
        findings["algorithms"] = sorted(a.id() for a in provider.algorithms()) if provider else []
        findings["toolbox"] = toolbox_entries("Land Cover U-Net")
        submenus = [a.menu() for a in iface.rasterMenu().actions()
                    if a.menu() is not None and "Land Cover U-Net" in a.text()]
        findings["menu_actions"] = [a.objectName() for menu in submenus for a in menu.actions()]
        results = processing.runAndLoadResults(job["algorithm"], job["parameters"])
        output = results[job["output"]]
        layers = [layer for layer in QgsProject.instance().mapLayers().values()
                  if isinstance(layer, QgsRasterLayer)
                  and os.path.abspath(layer.source()) == os.path.abspath(output)]
        findings["loaded_layers"] = [layer.name() for layer in layers]
        if layers:
            layer = layers[0]
            tree_layer = QgsProject.instance().layerTreeRoot().findLayer(layer.id())
            findings["in_layer_tree"] = tree_layer is not None
            renderer = layer.renderer()
            findings["renderer"] = renderer.type()
            if renderer.type() == "paletted":
                findings["classes"] = [[c.value, c.color.name(), c.label]
                                       for c in renderer.classes()]
            legend = [node.data(0) for node in
                      iface.layerTreeView().layerTreeModel().layerLegendNodes(tree_layer)]
            findings["legend"] = legend
            # as a colleague opens it: from the file, in a new layer, no Processing involved
            opened = iface.addRasterLayer(output, "opened from file")
            node = QgsProject.instance().layerTreeRoot().findLayer(opened.id())
            findings["legend_from_file"] = [
                n.data(0) for n in iface.layerTreeView().layerTreeModel().layerLegendNodes(node)]
            iface.mapCanvas().setExtent(layer.extent())
            iface.mapCanvas().refreshAllLayers()
    except Exception:
        findings["errors"].append(traceback.format_exc())
    QTimer.singleShot(4000, finish)


def toolbox_entries(provider_name: str) -> dict:
    """What the Processing toolbox dock shows under a provider: {group: [algorithm names]}."""
    from processing.gui.ProcessingToolbox import ProcessingToolbox
    from qgis.PyQt.QtCore import QModelIndex

    toolbox = iface.mainWindow().findChild(ProcessingToolbox)
    model = toolbox.algorithmTree.model()
    for row in range(model.rowCount(QModelIndex())):
        node = model.index(row, 0, QModelIndex())
        if model.data(node) == provider_name:
            groups = [model.index(r, 0, node) for r in range(model.rowCount(node))]
            return {model.data(group): sorted(model.data(model.index(r, 0, group))
                                              for r in range(model.rowCount(group)))
                    for group in groups}
    return {}


def finish() -> None:
    try:
        iface.mainWindow().grab().save(job["screenshot"])
    except Exception:
        findings["errors"].append(traceback.format_exc())
    with open(job["findings"], "w") as handle:
        json.dump(findings, handle, indent=2)
    QgsProject.instance().setDirty(False)
    os._exit(0)  # no "save project?" question, no exit-time teardown in the offscreen session


QTimer.singleShot(2000, run_job)
