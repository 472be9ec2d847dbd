"""What the "About / check installation" entry reports: versions, the Keras backends, GPUs.

Kept apart from the GUI so the same check runs in a test, in a script or from QGIS's console.
"""
from __future__ import annotations

import importlib
import platform
from typing import Callable

from .dependencies import ASIDE_KERAS, Dependency, install_command, installed_version
from .deps import SAFE_KERAS, keras_available, keras_is_safe, missing_help, require_keras
from .device import list_gpus
from .keras_backend import (AUTO, BACKENDS, LABELS, backend_in_use, installed, loaded_backend,
                            resolve)
from .version import plugin_version


def installation_report(qgis_version: str = "", setting: str = AUTO,
                        names: Callable[[Dependency], list[str]] | None = None
                        ) -> list[tuple[str, str]]:
    """Returns (item, finding) rows: plugin, QGIS, Python, GDAL, numpy, the Keras backend in use
    and why, Keras, each Keras backend (installed or not, its version and the GPUs it sees), and
    the GPUs the backend in use trains on.

    Importing the backends takes seconds, so this is only called when the user asks. ``setting``
    is the plugin's Keras backend setting, shown beside what is in use; ``names`` gives the
    algorithms that need a package, as people know them (their ids otherwise).
    """
    import numpy
    from osgeo import gdal

    rows = [("Land Cover U-Net", plugin_version())]
    if qgis_version:
        rows.append(("QGIS", qgis_version))
    rows += [("Python", platform.python_version()), ("GDAL", gdal.__version__),
             ("numpy", numpy.__version__)]
    rows.append(("Keras backend", backend_line(setting)))
    if not keras_available():
        rows.append(("Keras", "not usable: training and classification are unavailable.\n"
                              + missing_help()))
        return rows + [(LABELS[b], backend_finding(b, in_use=False)) for b in BACKENDS] + \
            others(names)
    backend = backend_in_use()
    try:
        keras = require_keras()
        backend = keras.config.backend()
        safe = "" if keras_is_safe(keras.__version__) else (
            f"; older than {'.'.join(map(str, SAFE_KERAS))}, which fixes ways for a crafted "
            "model file to run code: upgrade with python -m pip install \"keras>=3.14\" "
            "(needs Python 3.11 or later)")
        rows.append(("Keras", f"{keras.__version__} (backend: {backend}){safe}"))
    except Exception as error:  # a broken install is reported, not raised
        rows.append(("Keras", f"installed but does not load: {error}"))
    rows += [(LABELS[b], backend_finding(b, in_use=b == backend)) for b in BACKENDS]
    rows.append(("GPU", usable_gpus(backend)))
    return rows + others(names)


def others(names: Callable[[Dependency], list[str]] | None) -> list[tuple[str, str]]:
    """The packages beside Keras: their versions, or who needs them and how to install them."""
    rows = []
    for dependency in ASIDE_KERAS:
        finding = installed_version(dependency)
        if finding == "not installed":
            users = names(dependency) if names else list(dependency.needed_by)
            finding = (f"not installed, needed by {', '.join(users)}; install with: "
                       f"{install_command([dependency])}")
        rows.append((dependency.label, finding))
    return rows


def backend_line(setting: str) -> str:
    """The backend in use, why, and the plugin's setting when it differs or waits for a restart."""
    loaded = loaded_backend()
    resolution = resolve(setting)
    if loaded is None:
        line = f"{resolution.backend} (from {resolution.source})"
    elif loaded == resolution.backend:
        line = f"{loaded} (from {resolution.source})"
    else:
        line = (f"{loaded} (Keras is loaded; restart QGIS to use {resolution.backend}, from "
                f"{resolution.source})")
    return f"{line}; plugin setting: {setting}"


def backend_finding(backend: str, in_use: bool) -> str:
    """One Keras backend: not installed, or its version, whether it is in use and its GPUs.

    Imports the backend to ask (a broken one is reported, not raised)."""
    if not installed(backend):
        return "not installed"
    try:
        version = importlib.import_module(backend).__version__
    except Exception as error:
        return f"installed but does not load: {error}"
    use = ", in use" if in_use else ""
    return f"{version}{use}; GPUs: {usable_gpus(backend, short=True)}"


def usable_gpus(backend: str, short: bool = False) -> str:
    """Names the GPUs a Keras backend can use, or says there are none."""
    try:
        gpus = list_gpus(backend)
    except Exception as error:
        return f"could not be checked ({error})"
    if not gpus:
        return "none" if short else "none usable: training and classification run on the CPU"
    return ", ".join(gpus)


def format_report(rows: list[tuple[str, str]]) -> str:
    """Plain text, one 'item: finding' per line."""
    return "\n".join(f"{item}: {finding}" for item, finding in rows)
