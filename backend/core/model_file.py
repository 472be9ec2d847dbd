"""One ``.keras`` file that carries everything needed to classify.

A ``.keras`` file is a zip archive. Beside Keras's own entries it holds ``landcoverunet.json``:
bands, input dtype, normalisation, classes (ids, names, colours), tile size, pixel size and CRS of
the training data, metrics, date and plugin version. That entry reads with ``zipfile`` alone, so
the metadata is available without importing TensorFlow; Keras ignores it when loading.
An ONNX file exported from it (``onnx_model.py``) carries the same metadata and loads here too.
"""
from __future__ import annotations

import datetime
import json
import math
import os
import zipfile
from dataclasses import asdict, dataclass, field
from typing import Any

from .calibration import LIMITS, MAX_SMOOTHING
from .choices import MAX_TILE_SIZE
from .class_map import ClassMap
from .errors import UserError
from .model_safety import check_model_archive, model_archive, read_entry
from .onnx_model import OnnxNetwork, is_onnx, onnx_metadata_json
from .normalization import MIN_STD
from .raster_io import atomic_output
from .version import plugin_version

METADATA_ENTRY = "landcoverunet.json"
MODEL_EXTENSIONS = (".keras",)
"""Keras 3 writes and reads its zip format only under this extension."""
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
        temperature: the class probabilities are raised to 1 / temperature and renormalised
            before they are written (``core/calibration.py``; 1: as the network gives them).
            Training no longer fits one; files of an earlier version may carry one.
        label_smoothing: the label smoothing of the network's training targets; classification
            undoes it before the temperature (``core/calibration.py``; 0: none, as in files
            of an earlier version).
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
    temperature: float = 1.0
    label_smoothing: float = 0.0
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


MAX_DEPTH = 8
"""Deeper than any preset (``models/presets.py``); a deeper claim in a file is not believed."""
MAX_STATISTIC = 1e30
"""Far beyond any pixel value, and within float32 (where classification normalises)."""


def read_metadata(path: str) -> ModelMetadata:
    """Reads a model file's metadata without importing TensorFlow or Keras, and refuses
    metadata that cannot be right (see :func:`check_metadata`)."""
    require_model_file(path)
    try:
        if is_onnx(path):
            metadata = ModelMetadata.from_json(onnx_metadata_json(path))
        else:
            with model_archive(path) as archive:  # refuses zip bombs before unpacking
                text = read_entry(archive, METADATA_ENTRY, path).decode("utf-8")
            metadata = ModelMetadata.from_json(text)
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, TypeError, AttributeError,
            UnicodeDecodeError, OSError, RuntimeError, NotImplementedError):
        raise UserError(f"'{path}' is not a model trained by Land Cover U-Net "
                        "(a .keras file from 'Train U-Net').") from None
    check_metadata(metadata, path)
    return metadata


def require_model_file(path: str) -> None:
    """Refuses a model path that is not a file, saying what it is instead."""
    if os.path.isdir(path):
        raise UserError(f"The model file '{path}' is a folder, not a model file: choose the "
                        ".keras (or .onnx) file written by 'Train U-Net'.")
    if not os.path.isfile(path):
        raise UserError(f"The model file '{path}' does not exist.")


def check_metadata(metadata: ModelMetadata, path: str) -> None:
    """Refuses metadata no training run writes: a classification with it would divide by zero,
    read bands that are not there, or write class ids that do not fit the output.

    Raises:
        UserError: naming the first impossible value.
    """
    def refuse(what: str) -> None:
        raise UserError(f"The model file '{path}' has impossible metadata ({what}): it was "
                        "not written by 'Train U-Net' or was altered. Train the model again.")

    bands, count = metadata.bands, metadata.band_count
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        refuse(f"band count {count!r}")
    if (not isinstance(bands, list) or not bands
            or not all(isinstance(b, int) and not isinstance(b, bool) for b in bands)):
        refuse(f"bands {bands!r}")
    if any(not 1 <= b <= count for b in bands) or len(set(bands)) != len(bands):
        refuse(f"bands {bands} of a {count}-band image")
    for name, values in (("mean", metadata.mean), ("standard deviation", metadata.std)):
        if (not isinstance(values, list) or len(values) != len(bands) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                for v in values)):
            refuse(f"{name} {values!r} for {len(bands)} bands")
    if any(not MIN_STD <= v for v in metadata.std):  # 1 / std would overflow float32
        refuse(f"a standard deviation of {min(metadata.std):g}")
    if any(abs(v) > MAX_STATISTIC for v in metadata.mean + metadata.std):
        refuse(f"a statistic of {max(abs(v) for v in metadata.mean + metadata.std):g}")
    architecture = metadata.architecture if isinstance(metadata.architecture, dict) else {}
    depth = architecture.get("depth", 0)
    if not isinstance(depth, int) or isinstance(depth, bool) or not 0 <= depth <= MAX_DEPTH:
        refuse(f"network depth {depth!r}")
    tile = metadata.tile_size
    if (not isinstance(tile, int) or isinstance(tile, bool) or tile < max(1, 2 ** depth)
            or tile > MAX_TILE_SIZE):
        refuse(f"tile size {tile!r}" + (f", larger than the {MAX_TILE_SIZE} px 'Train U-Net' "
                                        "allows" if isinstance(tile, int) and tile > 0 else ""))
    classes = metadata.class_map.get("classes") if isinstance(metadata.class_map, dict) else None
    if not isinstance(classes, list) or not classes:
        refuse("no classes")
    try:
        class_map = ClassMap.from_dict(metadata.class_map)
    except UserError as error:
        refuse(str(error).rstrip("."))
    if [int(c["id"]) for c in classes] != class_map.ids:
        refuse("class ids out of order")
    temperature, smoothing = metadata.temperature, metadata.label_smoothing
    if (not isinstance(temperature, (int, float)) or isinstance(temperature, bool)
            or not (temperature == 1 or LIMITS[0] <= temperature <= LIMITS[1])):
        refuse(f"temperature {temperature!r}")
    if (not isinstance(smoothing, (int, float)) or isinstance(smoothing, bool)
            or not 0 <= smoothing <= MAX_SMOOTHING):
        refuse(f"label smoothing {smoothing!r}")


def load_model(path: str, precision: str = "float32") -> tuple[Any, ModelMetadata]:
    """Loads the network and its metadata, after checking both.

    The archive's configuration is checked against the plugin's allowlist before Keras reads
    it (``model_safety``), and Keras then loads with ``safe_mode=True``; any failure of Keras
    (a truncated weights file, a layer it cannot build) becomes a :class:`UserError`, so
    Keras's own advice (such as passing ``safe_mode=False``) never reaches the user. A network
    saved in mixed precision comes back in float32 (``models/precision.py``), or in
    ``precision`` when another is asked for (classification on a GPU). An exported
    ``.onnx`` file comes back as an :class:`OnnxNetwork` (ONNX Runtime; no Keras needed).
    """
    metadata = read_metadata(path)
    if is_onnx(path):
        network = OnnxNetwork(path)
        check_network(network, metadata, path)
        return network, metadata
    from .deps import require_keras

    check_model_archive(path)
    keras = require_keras()
    from ...models import custom_objects  # registers the serialisable losses and metrics

    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True,
                                        custom_objects=custom_objects())
    except Exception as error:  # noqa: BLE001  (any failure inside Keras means a bad file)
        raise UserError(f"The model file '{path}' could not be loaded: its network or weights "
                        f"are damaged or incomplete ({type(error).__name__}). Train the model "
                        "again or copy the file again.") from None
    check_network(model, metadata, path)
    from ...models.precision import FLOAT32, computes_in_float32, precision_copy

    if precision != FLOAT32 or not computes_in_float32(model):  # a file of an older version
        model = precision_copy(model, precision)  # kept mixed precision
    return model, metadata


def check_network(model: Any, metadata: ModelMetadata, path: str) -> None:
    """Refuses a network whose inputs or outputs disagree with its metadata."""
    inputs, outputs = model.input_shape[-1], model.output_shape[-1]
    classes = len(metadata.class_map["classes"])
    if inputs != len(metadata.bands) or outputs != classes:
        raise UserError(f"The model file '{path}' is inconsistent: the network takes {inputs} "
                        f"bands and gives {outputs} classes, its metadata says "
                        f"{len(metadata.bands)} bands and {classes} classes. It was not "
                        "written by 'Train U-Net' or was altered; train it again.")
