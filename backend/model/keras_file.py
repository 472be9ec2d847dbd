"""The ``.keras`` model file: written once by training, its metadata and network read back.

A ``.keras`` file is a zip archive. Beside Keras's own entries it holds ``landcoverunet.json``
(:class:`~.metadata.ModelMetadata`). That entry reads with ``zipfile`` alone, so the metadata is
available without importing TensorFlow; Keras ignores it when loading. Reading goes through
``opened.open_model``, which checks the archive (``keras_safety.py``) before Keras sees it.
"""
from __future__ import annotations

import datetime
import zipfile
from typing import Any

from ..core.errors import UserError
from ..core.raster_io import atomic_output
from ..core.version import plugin_version
from .keras_safety import model_archive, read_entry
from .metadata import ModelMetadata

METADATA_ENTRY = "landcoverunet.json"
MODEL_EXTENSIONS = (".keras",)
"""Keras 3 writes and reads its zip format only under this extension."""


def save_model(model: Any, path: str, metadata: ModelMetadata) -> None:
    """Saves a Keras model with its metadata as one ``.keras`` file, atomically.

    The file appears at ``path`` only once complete, so a cancelled or failed save never leaves
    a half-written model behind.
    """
    if not path.lower().endswith(".keras"):
        raise UserError(f"Model files must end in .keras: {path}")
    metadata.created = metadata.created or datetime.datetime.now().isoformat(timespec="seconds")
    metadata.plugin_version = metadata.plugin_version or plugin_version()
    with atomic_output(path) as temporary:
        model.save(temporary)
        with zipfile.ZipFile(temporary, "a", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(METADATA_ENTRY, metadata.to_json())


def keras_metadata_json(path: str) -> str:
    """The metadata entry of a ``.keras`` file, read without unpacking anything else (the
    archive's directory is checked first, so a zip bomb costs nothing)."""
    with model_archive(path) as archive:
        return read_entry(archive, METADATA_ENTRY, path).decode("utf-8")


def load_keras_network(path: str, precision: str) -> Any:
    """The network of a checked ``.keras`` file, in ``precision``.

    Keras loads with ``safe_mode=True``; any failure of Keras (a truncated weights file, a
    layer it cannot build) becomes a :class:`UserError`, so Keras's own advice (such as
    passing ``safe_mode=False``) never reaches the user. A network saved in mixed precision
    comes back in float32 (``models/precision.py``), or in ``precision`` when another is asked
    for (classification on a GPU).
    """
    from ..core.deps import require_keras

    keras = require_keras()
    from ...models import custom_objects  # registers the serialisable losses and metrics

    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True,
                                        custom_objects=custom_objects())
    except Exception as error:  # noqa: BLE001  (any failure inside Keras means a bad file)
        raise UserError(f"The model file '{path}' could not be loaded: its network or weights "
                        f"are damaged or incomplete ({type(error).__name__}). Train the model "
                        "again or copy the file again.") from None
    from ...models.precision import FLOAT32, computes_in_float32, precision_copy

    if precision != FLOAT32 or not computes_in_float32(model):  # a file of an older version
        model = precision_copy(model, precision)  # kept mixed precision
    return model
