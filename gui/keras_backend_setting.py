"""The plugin's Keras backend setting, kept in QGIS's settings and applied before Keras loads.

Keras reads its backend once, at its first import, so the setting is applied when the provider
loads (desktop and ``qgis_process`` alike), long before any algorithm imports Keras. The rules
(what wins over what) live in ``backend/core/keras_backend.py``; this module only stores the
choice.
"""
from __future__ import annotations

from qgis.core import Qgis, QgsMessageLog, QgsSettings

from ..backend.core.keras_backend import AUTO, CHOICES, apply_setting

KEY = "landcoverunet/keras_backend"
"""Where QgsSettings keeps the choice: "auto", "tensorflow", "jax" or "torch"."""

LOG_TAG = "Land Cover U-Net"


def read_setting() -> str:
    """The stored choice; "auto" when none (or an unknown value) is stored."""
    value = QgsSettings().value(KEY, AUTO, type=str)
    return value if value in CHOICES else AUTO


def save_setting(choice: str) -> str | None:
    """Stores a choice and applies it; returns a message when QGIS must be restarted first."""
    if choice not in CHOICES:
        raise ValueError(f"unknown Keras backend setting {choice!r}")
    QgsSettings().setValue(KEY, choice)
    return apply_setting(choice)


def apply_saved_setting() -> str | None:
    """Applies the stored choice (at load); a needed restart goes to the message log."""
    message = apply_setting(read_setting())
    if message:
        QgsMessageLog.logMessage(message, LOG_TAG, Qgis.Warning)
    return message
