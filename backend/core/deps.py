"""Optional heavy dependencies (Keras and its backend), imported only when the work needs them.

Loading the plugin must stay fast and must work without TensorFlow, so nothing imports these at
module level; :func:`require_keras` gives the user install instructions when they are missing.
"""
from __future__ import annotations

import importlib
import importlib.util
import os

from .keras_backend import LABELS, backend_in_use, installed

SAFE_KERAS = (3, 14)
"""The first Keras that fixes every known way for a crafted model file to run code when it is
loaded (CVE-2025-1550 ... CVE-2026-1462). Older ones still work: the plugin checks model files
itself (``model_safety``), but the installation check asks to upgrade."""

INSTALL_HELP = (
    "Training and classification need Keras 3.14 or later with a backend (TensorFlow by "
    "default, or JAX or PyTorch: choose it in Raster > Land Cover U-Net > Keras backend, or with "
    "KERAS_BACKEND), and training also scikit-learn, in the Python that QGIS runs. "
    "Install TensorFlow, then restart QGIS:\n"
    "- Windows (OSGeo4W / QGIS installer): open the 'OSGeo4W Shell' as administrator and run "
    "  python -m pip install tensorflow-cpu==2.17.1 \"keras>=3.14\" scikit-learn\n"
    "- macOS (official QGIS.app): /Applications/QGIS.app/Contents/MacOS/bin/python3 -m pip "
    "install --user tensorflow==2.17.1 \"keras>=3.14\" scikit-learn\n"
    "- Linux (Debian/Ubuntu packages): python3 -m venv --system-site-packages ~/.qgis-tf && "
    "~/.qgis-tf/bin/pip install tensorflow-cpu==2.17.1 'keras>=3.14' scikit-learn 'numpy<2', "
    "then make QGIS "
    "see it (see the plugin README, 'TensorFlow in QGIS's Python').\n"
    "Check in the QGIS Python console: import tensorflow, keras; print(tensorflow.__version__)")


def keras_is_safe(version: str) -> bool:
    """Whether a Keras version has all the model-file fixes of :data:`SAFE_KERAS`."""
    numbers = []
    for part in version.split(".")[:2]:
        digits = "".join(c for c in part if c.isdigit())
        numbers.append(int(digits) if digits else 0)
    return tuple(numbers) >= SAFE_KERAS


def keras_available() -> bool:
    """Whether Keras and the backend it will run on can be imported, without importing them."""
    return installed("keras") and installed(backend_in_use())


def missing_help() -> str:
    """What is missing (Keras, or the backend in use), then :data:`INSTALL_HELP`."""
    backend = backend_in_use()
    if installed("keras") and not installed(backend):
        return (f"The Keras backend in use, {LABELS.get(backend, backend)} ('{backend}'), is not "
                "installed.\n" + INSTALL_HELP)
    return INSTALL_HELP


def require_keras():
    """Imports and returns keras, or raises a UserError telling what to install."""
    from .errors import UserError

    if not keras_available():
        raise UserError(missing_help())
    try:
        _import_h5py_isolated()
        keras = importlib.import_module("keras")
    except Exception as error:  # a broken install: say what failed
        raise UserError(f"Keras or its backend ({backend_in_use()}) is installed but does not "
                        f"load ({error}).\n" + INSTALL_HELP) from None
    if not str(getattr(keras, "__version__", "0")).startswith("3"):
        raise UserError(f"Keras {keras.__version__} is too old; Keras 3 is needed.\n"
                        + INSTALL_HELP)
    return keras


def require_h5py():
    """Imports h5py as Keras will (bound to its own HDF5 library), for checking a model's
    weights before Keras reads them; a UserError telling what to install when it is missing."""
    from .errors import UserError

    _import_h5py_isolated()
    try:
        return importlib.import_module("h5py")
    except Exception as error:  # noqa: BLE001  (missing, or a broken install)
        raise UserError(f"Reading a .keras model needs h5py, which Keras installs and which does "
                        f"not load here ({error}).\n" + INSTALL_HELP) from None


def require_sklearn():
    """Imports scikit-learn (the training teacher's forest), or says how to install it."""
    from .errors import UserError

    try:
        return importlib.import_module("sklearn")
    except ImportError:
        raise UserError("Training needs scikit-learn beside TensorFlow (its random forest teaches "
                        "the U-Net). Install it the same way: python -m pip install "
                        "scikit-learn (or turn the teacher off with TEACHER=False).") from None


def _import_h5py_isolated() -> None:
    """Imports h5py (which Keras imports) bound to its own bundled HDF5 library.

    Inside QGIS and qgis_process, GDAL has already loaded the system's HDF5 into the global symbol
    namespace; pip's h5py wheel, built against another HDF5, would then resolve to it and fail
    ("Not a datatype"). RTLD_DEEPBIND makes h5py's extension modules prefer their own HDF5.
    """
    import sys

    if "h5py" in sys.modules or not hasattr(os, "RTLD_DEEPBIND") or \
            importlib.util.find_spec("h5py") is None:
        return
    flags = sys.getdlopenflags()
    sys.setdlopenflags(flags | os.RTLD_DEEPBIND)
    try:
        importlib.import_module("h5py")
    except Exception:  # Keras reports the failure itself when it imports h5py
        pass
    finally:
        sys.setdlopenflags(flags)
