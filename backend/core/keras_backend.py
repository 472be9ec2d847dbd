"""Which Keras backend (TensorFlow, JAX or PyTorch) runs the network, and which are installed.

Keras picks its backend once, when it is first imported: the ``KERAS_BACKEND`` environment
variable, else the ``backend`` of ``keras.json`` in Keras's home folder, else TensorFlow. The
plugin's own setting ("auto" or a backend) is applied by setting ``KERAS_BACKEND`` before that
import, unless the user set the variable. This module works all of that out without importing
Keras or any backend, so the plugin can load fast and tell the user what will happen.
"""
from __future__ import annotations

import importlib.util
import json
import os
import sys
from dataclasses import dataclass
from typing import Mapping, MutableMapping

BACKENDS = ("tensorflow", "jax", "torch")
"""The Keras backends the plugin supports, under Keras's names (also their module names)."""

AUTO = "auto"
CHOICES = (AUTO,) + BACKENDS
"""The values of the plugin's setting: "auto" leaves the choice to Keras."""

DEFAULT = "tensorflow"
"""Keras's own default when neither the variable nor keras.json names a backend."""

LABELS = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}

SET_BY_PLUGIN = "LANDCOVERUNET_KERAS_BACKEND_SET"
"""Marks a ``KERAS_BACKEND`` the plugin set from its setting (not the user), so a later change of
the setting may replace it while Keras is not imported yet; child processes inherit both."""


@dataclass(frozen=True)
class Resolution:
    """The backend Keras will use and why.

    Attributes:
        backend: "tensorflow", "jax", "torch" (or whatever unknown name the user gave).
        source: where it came from, in words for the installation report.
    """

    backend: str
    source: str


def keras_json_path(environ: Mapping[str, str] | None = None) -> str:
    """Where Keras reads keras.json: ``$KERAS_HOME``, else ``~/.keras`` (``/tmp/.keras`` when the
    home folder is not writable), as in ``keras/src/backend/config.py``."""
    environ = os.environ if environ is None else environ
    if "KERAS_HOME" in environ:
        folder = environ["KERAS_HOME"]
    else:
        home = os.path.expanduser("~")
        folder = os.path.join(home if os.access(home, os.W_OK) else "/tmp", ".keras")
    return os.path.expanduser(os.path.join(folder, "keras.json"))


def keras_json_backend(path: str | None = None) -> str | None:
    """The backend named in keras.json, or None (no file, unreadable, or no backend in it)."""
    try:
        with open(path or keras_json_path(), encoding="utf-8") as handle:
            backend = json.load(handle).get("backend")
    except (OSError, ValueError, AttributeError):
        return None
    return backend if isinstance(backend, str) and backend else None


def resolve(setting: str = AUTO, environ: Mapping[str, str] | None = None,
            json_path: str | None = None) -> Resolution:
    """The backend that a fresh import of Keras would use, given the plugin's setting.

    A ``KERAS_BACKEND`` the user set wins over the setting (it is how one process, a script or a
    dask worker, asks for another backend); a variable the plugin set itself does not.
    """
    environ = os.environ if environ is None else environ
    variable = environ.get("KERAS_BACKEND", "")
    if variable and environ.get(SET_BY_PLUGIN) != variable:
        return Resolution(variable, "the KERAS_BACKEND environment variable")
    if setting in BACKENDS or variable:  # the variable the plugin set is still in force
        return Resolution(setting if setting in BACKENDS else variable, "the plugin's setting")
    from_json = keras_json_backend(json_path or keras_json_path(environ))
    if from_json:
        return Resolution(from_json, "keras.json")
    return Resolution(DEFAULT, "Keras's default")


def loaded_backend() -> str | None:
    """The backend of the Keras already imported in this process, or None (not imported)."""
    keras = sys.modules.get("keras")
    if keras is None:
        return None
    try:
        return keras.config.backend()
    except Exception:  # a half-imported or broken Keras: Keras itself reports it
        return None


def backend_in_use() -> str:
    """The backend this process runs Keras on: the loaded one, else the one Keras would pick."""
    return loaded_backend() or resolve(environ=os.environ).backend


def installed(backend: str) -> bool:
    """Whether a backend's package is importable, without importing it."""
    try:
        return importlib.util.find_spec(backend) is not None
    except (ImportError, ValueError):  # a broken package, or one removed from sys.modules
        return False


def apply_setting(setting: str, environ: MutableMapping[str, str] | None = None) -> str | None:
    """Makes a chosen backend take effect at Keras's first import (sets ``KERAS_BACKEND``).

    Leaves a variable the user set alone; "auto" removes only a variable the plugin set itself.

    Returns:
        None when the next import of Keras will use what was asked (or the user's variable rules),
        else a message saying that QGIS must be restarted (Keras is already imported in this
        process with another backend).
    """
    environ = os.environ if environ is None else environ
    if setting not in CHOICES:
        setting = AUTO
    variable = environ.get("KERAS_BACKEND", "")
    set_by_user = bool(variable) and environ.get(SET_BY_PLUGIN) != variable
    if not set_by_user:
        if setting == AUTO:
            if variable:
                del environ["KERAS_BACKEND"]
            environ.pop(SET_BY_PLUGIN, None)
        else:
            environ["KERAS_BACKEND"] = environ[SET_BY_PLUGIN] = setting
    wanted = resolve(setting, environ).backend
    loaded = loaded_backend()
    if loaded is not None and loaded != wanted:
        return (f"Keras already runs on {LABELS.get(loaded, loaded)} in this process; restart "
                f"QGIS to use {LABELS.get(wanted, wanted)}.")
    return None
