"""The one way to open a model file: checked once, then used by every stage.

:func:`open_model` refuses a path that is no file, reads the metadata (without Keras or
TensorFlow), refuses impossible metadata, and checks everything the network loader will read
(``keras_safety.py`` for a ``.keras`` archive and its weights, ``onnx_safety.py`` for an
exported ``.onnx`` graph) before any work starts, so a refused file costs nothing. The
:class:`OpenedModel` it returns loads the network when a stage first asks for it, checks it
against the metadata, and keeps it: classification, suggestions, batch workers, export and
training's starting model all hold one object instead of opening the file again.
"""
from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from typing import Any, Callable

from ...models.precision import FLOAT32
from ..core.errors import UserError
from .keras_file import keras_metadata_json, load_keras_network
from .keras_safety import check_keras_archive
from .metadata import ModelMetadata, check_metadata
from .onnx_runtime import OnnxNetwork, is_onnx, onnx_metadata_json, onnx_window
from .windows import default_overlap, default_window


@dataclass
class OpenedModel:
    """A checked model file: its metadata, and its network once asked for.

    Attributes:
        path: the model file.
        metadata: its checked metadata.
    """

    path: str
    metadata: ModelMetadata
    _networks: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_onnx(self) -> bool:
        """Whether the file is an exported ONNX graph (run by ONNX Runtime, no Keras)."""
        return is_onnx(self.path)

    @property
    def name(self) -> str:
        """The file's name, as messages give it."""
        return os.path.basename(self.path)

    @property
    def default_window(self) -> int:
        """The inference window side: the exported graph's own for an ONNX file (Deepness reads
        it there), else a few training tiles (``windows.py``)."""
        if self.is_onnx:
            return onnx_window(self.path)
        return default_window(self.metadata.tile_size, self.metadata.multiple)

    @property
    def default_overlap(self) -> int:
        return default_overlap(self.metadata.tile_size)

    def loaded(self, precision: str = FLOAT32) -> bool:
        """Whether :meth:`network` has loaded the network in this precision already."""
        return self._runs_in(precision) in self._networks

    def _runs_in(self, precision: str) -> str:
        """The precision the network runs in when ``precision`` is asked for: an ``.onnx``
        file always as exported (float32)."""
        return FLOAT32 if self.is_onnx else precision

    def network(self, precision: str = FLOAT32) -> Any:
        """The network, loaded on first use and kept (one per precision), checked against the
        metadata. An ``.onnx`` file always runs as exported (float32)."""
        precision = self._runs_in(precision)
        if precision not in self._networks:
            network = (OnnxNetwork(self.path) if self.is_onnx
                       else load_keras_network(self.path, precision))
            check_network(network, self.metadata, self.path)
            self._networks[precision] = network
        return self._networks[precision]


def open_model(path: str) -> OpenedModel:
    """Opens a model file written by 'Train U-Net' (``.keras``) or 'Export model' (``.onnx``).

    Raises:
        UserError: a path that is no file, a file that is not a plugin model, impossible
            metadata, or anything in the file a plugin model never holds.
    """
    require_model_file(path)
    path = str(path)
    if is_onnx(path):  # opening the session checks the bytes the runtime reads (onnx_safety)
        metadata = _parsed(path, onnx_metadata_json)
    else:
        metadata = _parsed(path, keras_metadata_json)
        check_keras_archive(path)  # before Keras ever reads it
    return OpenedModel(path, metadata)


def load_model(path: str, precision: str = FLOAT32) -> tuple[Any, ModelMetadata]:
    """The network and metadata of a model file (:func:`open_model`, then its network)."""
    opened = open_model(path)
    return opened.network(precision), opened.metadata


def _parsed(path: str, read_json: Callable[[str], str]) -> ModelMetadata:
    """The metadata a file carries, checked; a file without any is not a plugin model."""
    try:
        metadata = ModelMetadata.from_json(read_json(path))
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


def check_network(model: Any, metadata: ModelMetadata, path: str) -> None:
    """Refuses a network whose inputs or outputs disagree with its metadata."""
    inputs, outputs = model.input_shape[-1], model.output_shape[-1]
    classes = len(metadata.class_map["classes"])
    if inputs != len(metadata.bands) or outputs != classes:
        raise UserError(f"The model file '{path}' is inconsistent: the network takes {inputs} "
                        f"bands and gives {outputs} classes, its metadata says "
                        f"{len(metadata.bands)} bands and {classes} classes. It was not "
                        "written by 'Train U-Net' or was altered; train it again.")
