"""The "Keras backend…" dialog: pick TensorFlow, JAX, PyTorch or Keras's own choice.

Simple Qt widgets over the stored setting (``gui/keras_backend_setting.py``); what is installed
and what is in use come from ``backend/core/keras_backend.py``, which imports no backend.
"""
from __future__ import annotations

import os

from qgis.PyQt.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QLabel, QVBoxLayout,
                                 QWidget)

from ..backend.core.keras_backend import (AUTO, BACKENDS, LABELS, SET_BY_PLUGIN, backend_in_use,
                                         installed, loaded_backend, resolve)

EXPLANATION = (
    "Keras runs the U-Net on one backend, chosen when Keras is first imported. "
    "'auto' leaves the choice to Keras: the KERAS_BACKEND environment variable, else "
    "keras.json, else TensorFlow. A backend chosen here applies from the next start of QGIS "
    "(at once if Keras has not been loaded yet); a KERAS_BACKEND you set yourself wins.")

INSTALL_POINTER = ("Raster > Land Cover U-Net > About / check installation gives the command "
                   "that installs it.")


def choice_label(choice: str) -> str:
    """The combo box text of a choice: its name and whether it is installed."""
    if choice == AUTO:
        return f"auto (Keras's choice: {resolve(AUTO, _without_plugin_variable()).backend})"
    state = "installed" if installed(choice) else "not installed"
    return f"{LABELS[choice]} ({state})"


def in_use_text() -> str:
    """One line: the backend this QGIS runs Keras on now, or will at Keras's first import; never
    promises a backend (or a Keras) that is not installed."""
    loaded = loaded_backend()
    if loaded:
        return f"In use now: {LABELS.get(loaded, loaded)} (Keras is loaded)."
    backend = backend_in_use()
    label = LABELS.get(backend, backend)
    if not installed("keras"):
        return (f"Keras is not installed, so nothing can run yet ({label} would be its backend): "
                f"{INSTALL_POINTER}")
    if not installed(backend):
        return (f"Keras is not loaded yet; it would run on {label}, which is not installed: "
                f"install it or choose an installed backend. {INSTALL_POINTER}")
    return f"Keras is not loaded yet; it will run on {label}."


def outcome_text(choice: str, restart: str | None) -> str:
    """What saving the choice did, for the message shown after OK."""
    if restart:
        return restart
    resolution = resolve(choice)
    backend = LABELS.get(resolution.backend, resolution.backend)
    if resolution.source != "the plugin's setting" and choice != AUTO:
        return (f"Saved, but {resolution.source} asks for {backend}, and it wins over this "
                "setting.")
    if not installed(resolution.backend) or not installed("keras"):
        absent = " and ".join(name for name, found in (("Keras", installed("keras")),
                                                       (backend, installed(resolution.backend)))
                              if not found)
        verb = "are" if " and " in absent else "is"
        return (f"Saved: Keras would run on {backend}, but {absent} {verb} not installed. "
                f"{INSTALL_POINTER}")
    return f"Saved: Keras will run on {backend}."


def _without_plugin_variable() -> dict[str, str]:
    """The environment as the user made it (without a KERAS_BACKEND the plugin set)."""
    environ = dict(os.environ)
    if environ.get(SET_BY_PLUGIN) == environ.get("KERAS_BACKEND"):
        environ.pop("KERAS_BACKEND", None)
    return environ


class KerasBackendDialog(QDialog):
    """A combo box of the choices, the backend in use, OK and Cancel."""

    def __init__(self, parent: QWidget | None, current: str) -> None:
        super().__init__(parent)
        self.setObjectName("landcoverunet_keras_backend_dialog")
        self.setWindowTitle("Land Cover U-Net: Keras backend")
        layout = QVBoxLayout(self)
        explanation = QLabel(EXPLANATION)
        explanation.setWordWrap(True)
        layout.addWidget(explanation)
        self.combo = QComboBox()
        for choice in (AUTO,) + BACKENDS:
            self.combo.addItem(choice_label(choice), choice)
        self.combo.setCurrentIndex(max(0, self.combo.findData(current)))
        layout.addWidget(self.combo)
        layout.addWidget(QLabel(in_use_text()))
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def chosen(self) -> str:
        """The choice selected in the combo box."""
        return self.combo.currentData()
