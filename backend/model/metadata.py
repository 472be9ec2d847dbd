"""What a model file says about its network: bands, normalisation, classes, window, origin.

Both kinds of model file carry the same :class:`ModelMetadata`: a ``.keras`` file as an extra
archive entry (``keras_file.py``), an exported ``.onnx`` file as a metadata property
(``onnx_runtime.py``). :func:`check_metadata` refuses what no training run writes, so every
stage can trust what it reads here.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

from ..core.calibration import LIMITS, MAX_SMOOTHING
from ..core.choices import MAX_TILE_SIZE, size_multiple
from ..core.class_map import ClassMap
from ..core.errors import UserError
from ..core.normalization import MIN_STD

FORMAT_VERSION = 1
ASSUMED_DEPTH = 4
"""The network depth of a file whose architecture does not say (the presets' usual depth;
windows that are multiples of ``2 ** 4`` also suit shallower networks)."""
MAX_DEPTH = 8
"""Deeper than any preset (``models/presets.py``); a deeper claim in a file is not believed."""
MAX_STATISTIC = 1e30
"""Far beyond any pixel value, and within float32 (where classification normalises)."""


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


    @property
    def depth(self) -> int:
        """The network's depth: windows it takes are multiples of ``2 ** depth``."""
        architecture = self.architecture if isinstance(self.architecture, dict) else {}
        return architecture.get("depth", ASSUMED_DEPTH)

    @property
    def multiple(self) -> int:
        """The side every window the network takes is a multiple of."""
        return size_multiple(self.depth)


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
    depth = metadata.depth
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


