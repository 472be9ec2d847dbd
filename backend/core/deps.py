"""Optional heavy dependencies (Keras and its backend), imported only when the work needs them.

Loading the plugin must stay fast and must work without TensorFlow, so nothing imports these at
module level; :func:`require_keras` says what is missing and the command that installs it
(``dependencies.py``).
"""
from __future__ import annotations

import importlib
import importlib.util
import os

from .keras_backend import backend_in_use, installed

SAFE_KERAS = (3, 14)
"""The first Keras that fixes every known way for a crafted model file to run code when it is
loaded (CVE-2025-1550 ... CVE-2026-1462). Older ones still work: the plugin checks model files
itself (``model/keras_safety``), but the installation check asks to upgrade."""

BROKEN_HELP = ("Reinstall it as the README's 'Dependencies' section says, then restart QGIS; "
               "Raster > Land Cover U-Net > About / check installation shows what QGIS finds.")
"""What to do about a package that is installed but does not load."""


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
    """One message naming what is missing (Keras, the backend in use, or both) and the command
    that installs it here (``dependencies.missing_message``)."""
    from .dependencies import KERAS, backend_dependency, is_installed, missing_message

    absent = [d for d in (KERAS, backend_dependency(backend_in_use())) if not is_installed(d)]
    return missing_message(absent or [KERAS])


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
                        f"load ({error}). " + BROKEN_HELP) from None
    if not str(getattr(keras, "__version__", "0")).startswith("3"):
        raise UserError(f"Keras {keras.__version__} is too old; Keras 3.14 or later is needed. "
                        + BROKEN_HELP)
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
                        f"not load here ({error}). " + BROKEN_HELP) from None


def require_sklearn():
    """Imports scikit-learn (the training teacher's forest), or says how to install it."""
    from .errors import UserError

    from .dependencies import SKLEARN, missing_message

    try:
        return importlib.import_module("sklearn")
    except ImportError:
        raise UserError(missing_message([SKLEARN]) + " Or untick the random-forest teacher (an "
                        "advanced parameter).") from None


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
