"""The Keras backend setting in real QGIS: stored, applied at load, chosen in the menu."""
from __future__ import annotations

import os

import pytest
from qgis.core import QgsSettings
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QApplication, QMessageBox

from landcoverunet.gui.keras_backend_setting import KEY, read_setting
from landcoverunet.backend.core.keras_backend import SET_BY_PLUGIN


@pytest.fixture
def clean(monkeypatch):
    """No stored setting and no KERAS_BACKEND; both put back as they were afterwards."""
    stored = QgsSettings().value(KEY)
    for name in ("KERAS_BACKEND", SET_BY_PLUGIN):   # setenv first, so that teardown restores
        monkeypatch.setenv(name, "x")
        monkeypatch.delenv(name)
    QgsSettings().remove(KEY)
    yield
    if stored is None:
        QgsSettings().remove(KEY)
    else:
        QgsSettings().setValue(KEY, stored)


def test_the_provider_applies_the_stored_setting_when_it_loads(clean, qgis_processing):
    from landcoverunet.algorithms.provider import LandCoverUNetProvider

    QgsSettings().setValue(KEY, "jax")
    provider = LandCoverUNetProvider()
    assert "KERAS_BACKEND" not in os.environ
    assert provider.load()          # what the registry calls when the plugin adds it
    assert os.environ["KERAS_BACKEND"] == "jax" == os.environ[SET_BY_PLUGIN]
    assert {algorithm.name() for algorithm in provider.algorithms()} == {
        "buildmasks", "trainunet", "suggestlabels", "classifyraster", "classifybatch",
        "accuracysample", "assessaccuracy", "exportmodel"}
    QgsSettings().setValue(KEY, "auto")
    assert provider.load() and "KERAS_BACKEND" not in os.environ
    QgsSettings().setValue(KEY, "nonsense")
    assert read_setting() == "auto"


def test_the_menu_action_stores_the_choice(clean, qgis_iface, qgis_processing):
    import landcoverunet

    seen = {}

    def answer_dialogs() -> None:
        """Picks JAX in the dialog, then reads and closes the message that follows."""
        widget = QApplication.activeModalWidget()
        if widget is None:
            QTimer.singleShot(50, answer_dialogs)
        elif widget.objectName() == "landcoverunet_keras_backend_dialog":
            seen["choices"] = [widget.combo.itemData(i) for i in range(widget.combo.count())]
            seen["labels"] = [widget.combo.itemText(i) for i in range(widget.combo.count())]
            widget.combo.setCurrentIndex(widget.combo.findData("jax"))
            widget.accept()
            QTimer.singleShot(50, answer_dialogs)
        elif isinstance(widget, QMessageBox):
            seen["message"] = widget.text()
            widget.accept()

    instance = landcoverunet.classFactory(qgis_iface)
    instance.initGui()
    try:
        action = next(a for a in instance.actions
                      if a.objectName() == "landcoverunet_keras_backend")
        QTimer.singleShot(50, answer_dialogs)
        action.trigger()
    finally:
        instance.unload()
    assert seen["choices"] == ["auto", "tensorflow", "jax", "torch"]
    assert seen["labels"][1:3] == ["TensorFlow (installed)", "JAX (installed)"]
    assert seen["labels"][0].startswith("auto (Keras's choice: ")
    assert read_setting() == "jax" and os.environ["KERAS_BACKEND"] == "jax"
    import sys
    keras = sys.modules.get("keras")
    if keras is not None and keras.backend.backend() == "tensorflow":  # loaded by another test
        assert seen["message"] == ("Keras already runs on TensorFlow in this process; restart "
                                   "QGIS to use JAX.")
    else:
        assert seen["message"] == "Saved: Keras will run on JAX."
