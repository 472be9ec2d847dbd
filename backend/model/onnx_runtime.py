"""Model files exported to ONNX (``landcoverunet:exportmodel``), read and run by ONNX Runtime.

An exported file carries the same :class:`ModelMetadata` as the ``.keras`` file it came from,
as a metadata property, so 'Classify raster' takes it like a ``.keras`` model but needs neither
Keras nor TensorFlow: only ``onnxruntime``. ONNX files hold no Python code, so they are safe
to run whoever wrote them; what else a file may do (read weights from other files, call custom
operators) is refused by ``onnx_safety`` before ONNX Runtime sees its bytes.

The graph (``models/onnx_export.py``) takes what the Deepness plugin feeds a model: raw pixel
values divided by :data:`INPUT_SCALE`, channels first, in square windows of a fixed side
(Classify raster's default inference window for the model), and returns the class
probabilities. Normalisation is inside the graph.
"""
from __future__ import annotations

import functools
import json
import os
from typing import Any

import numpy as np

from ..core.choices import MAX_TILE_SIZE
from ..core.dependencies import ONNX, missing_message
from ..core.errors import UserError
from .onnx_safety import read_checked_onnx

ONNX_EXTENSION = ".onnx"
INPUT_SCALE = 255.0
"""The graph's input is ``raw / INPUT_SCALE``: Deepness feeds 8-bit tiles divided by 255."""
METADATA_KEY = "landcoverunet_model"
"""Metadata property holding the plugin's ``ModelMetadata`` as JSON."""
CLASS_MAP_KEY = "landcoverunet_class_map"
"""Metadata property holding the class map (ids, names, colours) as JSON, for other tools."""
PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")
"""ONNX Runtime's devices, in the order tried: an NVIDIA GPU where ``onnxruntime-gpu`` sees one,
else the CPU."""

def is_onnx(path: str) -> bool:
    """Whether a model path names an ONNX file (by its extension, as the file dialogs do)."""
    return str(path).lower().endswith(ONNX_EXTENSION)


@functools.lru_cache(maxsize=4)
def _session(path: str, modified: float) -> Any:
    """One ONNX Runtime session per file version (opening one parses the weights)."""
    try:
        import onnxruntime
    except ImportError:
        raise UserError(missing_message([ONNX]) + " The .keras file the model was exported "
                        "from classifies without it.") from None
    data = read_checked_onnx(path)  # the checked bytes are what the runtime reads
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # warnings about unused initialisers are not the user's
    options.add_session_config_entry("session.load_model_format", "ONNX")
    available = onnxruntime.get_available_providers()
    providers = [p for p in PROVIDERS if p in available] or available
    try:
        opened = onnxruntime.InferenceSession(data, sess_options=options, providers=providers)
    except Exception as error:  # noqa: BLE001  (any failure of the runtime means a bad file)
        raise UserError(f"The ONNX file '{path}' could not be opened ({type(error).__name__}): "
                        "export it again with 'Export model'.") from None
    window_shapes(opened, path)
    return opened


def window_shapes(opened: Any, path: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The graph's input and output shapes, ``(bands, side, side)`` and ``(classes, side,
    side)``, once they are what the exporter writes: a free batch, then fixed sizes, a square
    window no larger than a training tile can be.

    Raises:
        UserError: a graph of other shapes (symbolic sizes, huge windows, other ranks).
    """
    inputs, outputs = opened.get_inputs(), opened.get_outputs()
    shapes = [list(inputs[0].shape)[1:] if inputs else [],
              list(outputs[0].shape)[1:] if outputs else []]
    sizes_ok = all(len(shape) == 3 and all(isinstance(v, int) and 1 <= v <= MAX_TILE_SIZE
                                            for v in shape) for shape in shapes)
    if (len(inputs) != 1 or len(outputs) != 1 or not sizes_ok
            or shapes[0][1] != shapes[0][2] or shapes[0][1:] != shapes[1][1:]):
        raise UserError(f"The ONNX file '{path}' takes or gives windows of sizes "
                        f"{[list(i.shape) for i in inputs]} -> {[list(o.shape) for o in outputs]}"
                        f", which a model exported by Land Cover U-Net never does (one square "
                        f"window of at most {MAX_TILE_SIZE} px). Export the model again with "
                        "'Export model'.")
    return tuple(shapes[0]), tuple(shapes[1])


def session(path: str) -> Any:
    """The ONNX Runtime session of a file (opened once while the file is unchanged)."""
    if not os.path.isfile(path):
        raise UserError(f"The model file '{path}' does not exist.")
    return _session(os.path.abspath(path), os.path.getmtime(path))


def onnx_window(path: str) -> int:
    """The square window side an exported graph takes (fixed: Deepness reads it there)."""
    return int(session(path).get_inputs()[0].shape[2])  # checked by window_shapes


def read_onnx_properties(path: str) -> dict[str, str]:
    """The metadata properties of an ONNX file (key -> text)."""
    return dict(session(path).get_modelmeta().custom_metadata_map)


def onnx_metadata_json(path: str) -> str:
    """The plugin metadata an exported file carries; a UserError for other ONNX files."""
    text = read_onnx_properties(path).get(METADATA_KEY)
    if not text:
        raise UserError(f"'{path}' is an ONNX model, but not one exported by Land Cover U-Net "
                        "('Export model'): it carries no bands, normalisation nor classes.")
    return text


class OnnxNetwork:
    """An exported network with the interface classification uses of a Keras model.

    ``input_shape`` and ``output_shape`` are channels last, as Keras's; a call takes raw
    pixels ``(n, h, w, bands)`` of any numeric dtype and returns float32 probabilities
    ``(n, h, w, classes)``. Windows smaller than the graph's side are padded by reflection and
    the answer cropped; larger ones are refused (classification plans windows of that side).
    """

    def __init__(self, path: str) -> None:
        self.session = session(path)
        graph_input = self.session.get_inputs()[0]
        _, bands, height, width = graph_input.shape
        classes = self.session.get_outputs()[0].shape[1]
        self.input_name = graph_input.name
        self.size = int(height)
        self.input_shape = (None, int(height), int(width), int(bands))
        self.output_shape = (None, int(height), int(width), int(classes))

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        n, h, w, _ = raw.shape
        if h > self.size or w > self.size:
            raise UserError(f"This ONNX model takes windows of at most {self.size} px; "
                            f"{w} x {h} px were given.")
        x = raw.astype(np.float32) * np.float32(1.0 / INPUT_SCALE)
        if (h, w) != (self.size, self.size):
            x = np.pad(x, ((0, 0), (0, self.size - h), (0, self.size - w), (0, 0)),
                       mode="reflect" if min(h, w) > self.size // 2 else "edge")
        out = self.session.run(None, {self.input_name: x.transpose(0, 3, 1, 2)})[0]
        return np.ascontiguousarray(out.transpose(0, 2, 3, 1)[:, :h, :w])


def deepness_properties(class_names: list[str], window: int, overlap: int,
                        pixel_size_cm: float | None) -> dict[str, str]:
    """The metadata the Deepness plugin reads (each value JSON, as its documentation shows)."""
    properties = {"model_type": json.dumps("Segmentor"),
                  "class_names": json.dumps({str(i): n for i, n in enumerate(class_names)}),
                  "tiles_size": json.dumps(int(window)),
                  "tiles_overlap": json.dumps(max(1, int(round(100.0 * overlap / window))))}
    if pixel_size_cm:
        properties["resolution"] = json.dumps(round(float(pixel_size_cm), 3))
    return properties
