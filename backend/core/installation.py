"""What the "About / check installation" entry reports: versions, and whether a GPU is usable.

Kept apart from the GUI so the same check runs in a test, in a script or from QGIS's console.
"""
from __future__ import annotations

import platform
import sys

from .deps import INSTALL_HELP, SAFE_KERAS, keras_available, keras_is_safe, require_keras
from .device import list_gpus
from .version import plugin_version


def installation_report(qgis_version: str = "") -> list[tuple[str, str]]:
    """Returns (item, finding) rows: plugin, QGIS, Python, GDAL, numpy, TensorFlow, Keras, GPU.

    Importing TensorFlow takes seconds, so this is only called when the user asks.
    """
    import numpy
    from osgeo import gdal

    rows = [("Land Cover U-Net", plugin_version())]
    if qgis_version:
        rows.append(("QGIS", qgis_version))
    rows += [("Python", platform.python_version()), ("GDAL", gdal.__version__),
             ("numpy", numpy.__version__)]
    if not keras_available():
        rows.append(("TensorFlow / Keras", "not installed: training and classification are "
                                           "unavailable.\n" + INSTALL_HELP))
        return rows
    try:
        keras = require_keras()
        backend = keras.backend.backend()
        safe = "" if keras_is_safe(keras.__version__) else (
            f"; older than {'.'.join(map(str, SAFE_KERAS))}, which fixes ways for a crafted "
            "model file to run code: upgrade with python -m pip install \"keras>=3.14\" "
            "(needs Python 3.11 or later)")
        rows.append(("Keras", f"{keras.__version__} (backend: {backend}){safe}"))
        rows.append(("GPU", usable_gpus(backend)))
        if backend == "tensorflow":  # Keras has imported it
            rows.insert(-2, ("TensorFlow", sys.modules["tensorflow"].__version__))
    except Exception as error:  # a broken install is reported, not raised
        rows.append(("TensorFlow / Keras", f"installed but does not load: {error}"))
    return rows


def usable_gpus(backend: str) -> str:
    """Names the GPUs the Keras backend can use, or says there are none."""
    try:
        gpus = list_gpus(backend)
    except Exception as error:
        return f"could not be checked ({error})"
    if not gpus:
        return "none usable: training and classification run on the CPU"
    return ", ".join(gpus)


def format_report(rows: list[tuple[str, str]]) -> str:
    """Plain text, one 'item: finding' per line."""
    return "\n".join(f"{item}: {finding}" for item, finding in rows)
