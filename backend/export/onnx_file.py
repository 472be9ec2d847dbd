"""A ``.keras`` model file written as an ONNX file for ONNX Runtime and the Deepness plugin.

The file works in three places: 'Classify raster' of this plugin (no TensorFlow needed, only
``onnxruntime``), the Deepness plugin (its metadata gives the class names, resolution, tile
size and overlap), and any ONNX Runtime program (the plugin's class map, ids, names and colours,
is in the metadata too). Before the file is put in place, the exported graph is run on a
window of plausible pixels and compared with the Keras network; a graph that disagrees is never
written.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from ..core.dependencies import ONNX, missing_message
from ..core.errors import UserError
from ..core.normalization import inverse_std, normalise_values
from ..core.progress import ConsoleProgress, Progress
from ..core.raster_io import atomic_output
from ..model.metadata import ModelMetadata
from ..model.onnx_runtime import (CLASS_MAP_KEY, INPUT_SCALE, METADATA_KEY, OnnxNetwork,
                                  deepness_properties, is_onnx)
from ..model.opened import open_model

TOLERANCE = 1e-3
"""Largest difference in a class probability between the graph and the Keras network that is
accepted: float32 arithmetic in another order differs by about 1e-6 under TensorFlow, and up to
3e-4 where a probability is far from 0 and 1 under JAX (XLA's CPU kernels); a mistranslated
layer differs by tenths."""

@dataclass
class ExportResult:
    """What was written: the file, its window side and classes, and the check's figures."""

    path: str
    window: int
    classes: list[str]
    max_difference: float
    agreement: float


def export_onnx(model_path: str, output_path: str,
                progress: Progress | None = None) -> ExportResult:
    """Writes ``output_path`` (.onnx) from a ``.keras`` model file of 'Train U-Net'.

    Raises:
        UserError: a wrong extension, a file that is not a plugin model, a missing package, or
            a network the exporter cannot translate.
    """
    progress = progress or ConsoleProgress(quiet=True)
    if not output_path.lower().endswith(".onnx"):
        raise UserError(f"The exported model must end in .onnx: {output_path}")
    if is_onnx(model_path):
        raise UserError(f"'{model_path}' is an ONNX file already; choose the .keras file.")
    try:
        import onnx  # noqa: F401  (checked before the model is loaded)
        import onnxruntime  # noqa: F401
    except ImportError:
        raise UserError(missing_message([ONNX])) from None
    from ...models.onnx_export import UnsupportedLayer, to_onnx

    opened = open_model(model_path)
    metadata = opened.metadata
    progress.info(f"Loading the model {opened.name} ...")
    model = opened.network()
    progress.set_fraction(0.3)
    # the window Classify raster uses for the .keras file, so both give the same map
    window = opened.default_window
    names = [entry["name"] for entry in metadata.class_map["classes"]]
    properties = deepness_properties(names, window, opened.default_overlap,
                                     pixel_size_cm(metadata))
    properties[METADATA_KEY] = metadata.to_json()
    properties[CLASS_MAP_KEY] = json.dumps(metadata.class_map)
    scale = inverse_std(metadata.std)
    try:
        graph = to_onnx(model, metadata.mean, scale, window, INPUT_SCALE, properties)
    except UnsupportedLayer as error:
        raise UserError(f"The model cannot be exported: {error}.") from None
    progress.set_fraction(0.6)
    with atomic_output(output_path) as temporary:
        with open(temporary, "wb") as handle:
            handle.write(graph.SerializeToString())
        difference, agreement = compare(model, OnnxNetwork(temporary), metadata)
        if difference > TOLERANCE:
            raise UserError(f"The exported graph differs from the Keras network by up to "
                            f"{difference:.2g} in a class probability; nothing was written. "
                            "Please report this with the model file.")
    progress.set_fraction(1.0)
    progress.info(f"Wrote {output_path}: windows of {window} x {window} px, {len(names)} classes "
                  f"({', '.join(names)}); on a test window it gives the Keras network's "
                  f"probabilities to within {difference:.1g} and the same class for "
                  f"{agreement:.2%} of pixels.")
    if metadata.input_dtype != "uint8":
        progress.info(f"The model was trained on {metadata.input_dtype} pixels. The Deepness "
                      "plugin feeds 8-bit images only, so there it suits 8-bit imagery of the "
                      "same bands; 'Classify raster' takes the file with any pixel type.")
    return ExportResult(output_path, window, names, difference, agreement)


def compare(model, network: OnnxNetwork, metadata: ModelMetadata,
            seed: int = 0) -> tuple[float, float]:
    """(largest probability difference, share of pixels of the same class) between the Keras
    network and the exported graph on a window of pixels drawn around the training statistics.
    """
    from keras import ops

    size = network.size
    rng = np.random.default_rng(seed)
    mean, std = np.asarray(metadata.mean, np.float32), np.asarray(metadata.std, np.float32)
    raw = (mean + std * rng.standard_normal((1, size, size, len(mean)))).astype(np.float32)
    expected = ops.convert_to_numpy(model(normalise_values(raw, metadata.mean,
                                                           inverse_std(metadata.std)),
                                          training=False))
    got = network(raw)
    return (float(np.abs(got - expected).max()),
            float((got.argmax(-1) == expected.argmax(-1)).mean()))


def pixel_size_cm(metadata: ModelMetadata) -> float | None:
    """The training pixel's side in centimetres (Deepness's ``resolution``); None when the
    training CRS is not in linear units."""
    if not metadata.pixel_size or not metadata.crs_wkt:
        return None
    from osgeo import osr

    srs = osr.SpatialReference(metadata.crs_wkt)
    if not srs.IsProjected():
        return None
    return abs(float(metadata.pixel_size[0])) * srs.GetLinearUnits() * 100.0
