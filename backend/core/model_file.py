"""One ``.keras`` file that carries everything needed to classify.

A ``.keras`` file is a zip archive. Beside Keras's own entries it holds ``landcoverunet.json``:
bands, input dtype, normalisation, classes (ids, names, colours), tile size, pixel size and CRS of
the training data, metrics, date and plugin version. That entry reads with ``zipfile`` alone, so
the metadata is available without importing TensorFlow; Keras ignores it when loading.
"""
from __future__ import annotations

import datetime
import json
import os
import zipfile
from dataclasses import asdict, dataclass, field
from typing import Any

from .class_map import ClassMap
from .errors import UserError
from .raster_io import atomic_output
from .version import plugin_version

METADATA_ENTRY = "landcoverunet.json"
FORMAT_VERSION = 1


@dataclass
class ModelMetadata:
    """What a trained model needs to classify an image, and where it came from.

    Attributes:
        bands: 1-based band numbers of the image fed to the network, in channel order.
        band_count: how many bands the training image had.
        input_dtype: numpy dtype name of the training image's pixels.
        mean: per channel (band in ``bands``) mean of the valid training pixels.
        std: per channel standard deviation of the valid training pixels.
        class_map: the classes as ``ClassMap.to_dict()``; output channel i is
            ``class_map["classes"][i]``.
        tile_size: the training tile size in pixels (inference windows are multiples of
            ``2 ** architecture["depth"]``).
        architecture: U-Net settings (``depth``, ``filters``, ``dropout``, ``model_size``).
        pixel_size: (x, y) ground size of a training pixel, in ``crs_wkt`` units.
        crs_wkt: CRS of the training image.
        metrics: training results (best validation mIoU, per-class IoU, epochs, ...).
        created: ISO date and time of training.
        plugin_version: version of the plugin that trained it.
        format_version: version of this metadata layout.
    """

    bands: list[int]
    band_count: int
    input_dtype: str
    mean: list[float]
    std: list[float]
    class_map: dict
    tile_size: int
    architecture: dict = field(default_factory=dict)
    pixel_size: list[float] = field(default_factory=list)
    crs_wkt: str = ""
    metrics: dict = field(default_factory=dict)
    created: str = ""
    plugin_version: str = ""
    format_version: int = FORMAT_VERSION

    @property
    def classes(self) -> ClassMap:
        return ClassMap.from_dict(self.class_map)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> "ModelMetadata":
        data = json.loads(text)
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


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


def read_metadata(path: str) -> ModelMetadata:
    """Reads a model file's metadata without importing TensorFlow or Keras."""
    if not os.path.isfile(path):
        raise UserError(f"The model file '{path}' does not exist.")
    try:
        with zipfile.ZipFile(path) as archive:
            return ModelMetadata.from_json(archive.read(METADATA_ENTRY).decode("utf-8"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, TypeError):
        raise UserError(f"'{path}' is not a model trained by Land Cover U-Net "
                        "(a .keras file from 'Train U-Net').") from None


def load_model(path: str) -> tuple[Any, ModelMetadata]:
    """Loads the network (with ``safe_mode=True``) and its metadata."""
    from .deps import require_keras

    metadata = read_metadata(path)
    keras = require_keras()
    from ...models import custom_objects  # registers the serialisable losses and metrics

    model = keras.saving.load_model(path, compile=False, safe_mode=True,
                                    custom_objects=custom_objects())
    return model, metadata
