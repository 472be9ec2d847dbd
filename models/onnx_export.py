"""A plugin network as an ONNX graph, written layer by layer from the Keras model.

Keras's own ``model.export(format="onnx")`` needs tf2onnx under TensorFlow (not on the package
index this project installs from, and it pins protobuf against TensorFlow 2.17) or a working
PyTorch; the plugin's networks use the few layer types that ``backend/model/keras_safety.py``
allows in a model file (and the activations linear, ReLU and softmax), so they are translated
here directly, with ``onnx.helper``. A layer outside that set is refused by name, never guessed.

The graph is channels-first (``NCHW``), as ONNX Runtime and the Deepness plugin expect. The
input is the raw band values divided by ``input_scale`` (255: Deepness feeds 8-bit tiles as
``value / 255``); the plugin's normalisation, ``(raw - mean) * scale``, is folded into the two
first nodes, so the network needs nothing but the pixels. The output is the class
probabilities, ``(batch, classes, height, width)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

OPSET = 13
"""ONNX operator set: Softmax over one axis, BatchNormalization and every op used here exist
in it, and ONNX Runtime has run it since 1.6 (Deepness asks for no newer)."""
IR_VERSION = 7
"""The file format version that goes with :data:`OPSET` (readable by ONNX Runtime >= 1.6)."""
INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"


class UnsupportedLayer(ValueError):
    """The network holds a layer this exporter does not translate."""


@dataclass
class _Graph:
    """The nodes and weights written so far, and the ONNX name of every Keras tensor."""

    nodes: list = field(default_factory=list)
    weights: list = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)

    def weight(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        self.weights.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attributes: Any) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output


def to_onnx(model: Any, mean: Sequence[float], scale: Sequence[float], size: int,
            input_scale: float = 255.0, metadata: dict[str, str] | None = None) -> Any:
    """The ONNX model (``onnx.ModelProto``) of a plugin network, normalisation included.

    Args:
        model: a float32 Keras functional model from ``models/unet.py`` or ``models/ensemble``.
        mean, scale: per band, the plugin's normalisation ``(raw - mean) * scale``.
        size: the square window side the graph takes (Deepness reads the tile size from the
            input's shape, so it is fixed); the batch stays free.
        input_scale: the graph's input is ``raw / input_scale``.
        metadata: key -> text pairs written as the model's metadata properties.

    Raises:
        UnsupportedLayer: a layer of the network has no translation here.
    """
    from onnx import TensorProto, checker, helper

    bands = int(model.input_shape[-1])
    classes = int(model.output_shape[-1])
    graph = _Graph()
    factor = (np.asarray(scale, np.float32) * np.float32(input_scale)).reshape(1, bands, 1, 1)
    shift = (-np.asarray(mean, np.float32) * np.asarray(scale, np.float32)).reshape(
        1, bands, 1, 1)
    x = graph.node("Mul", [INPUT_NAME, graph.weight("normalise_factor", factor)], "scaled")
    x = graph.node("Add", [x, graph.weight("normalise_shift", shift.astype(np.float32))],
                   "normalised")
    out = _functional(graph, model, [x], prefix="network/")
    graph.nodes.append(helper.make_node("Identity", [out[0]], [OUTPUT_NAME], name=OUTPUT_NAME))
    inputs = [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT,
                                            ["batch", bands, size, size])]
    outputs = [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT,
                                             ["batch", classes, size, size])]
    onnx_graph = helper.make_graph(graph.nodes, model.name, inputs, outputs, graph.weights)
    result = helper.make_model(onnx_graph, producer_name="Land Cover U-Net",
                               opset_imports=[helper.make_opsetid("", OPSET)])
    result.ir_version = IR_VERSION
    for key, value in (metadata or {}).items():
        entry = result.metadata_props.add()
        entry.key, entry.value = key, value
    checker.check_model(result)
    return result


def _functional(graph: _Graph, model: Any, inputs: list[str], prefix: str) -> list[str]:
    """Writes a functional model's layers in dependency order; returns its outputs' names.

    Nested models (the members of an ensemble) are written in place, their names prefixed.
    """
    for tensor, name in zip(model.inputs, inputs):
        graph.names[id(tensor)] = name
    for depth in sorted(model._nodes_by_depth, reverse=True):  # Keras's own topological order
        for node in model._nodes_by_depth[depth]:
            layer = node.operation
            if not node.input_tensors:  # the InputLayer
                continue
            sources = [graph.names[id(t)] for t in node.input_tensors]
            name = f"{prefix}{layer.name}"
            if hasattr(layer, "_nodes_by_depth"):  # a nested functional model
                results = _functional(graph, layer, sources, prefix=f"{name}/")
            else:
                results = [_layer(graph, layer, sources, name)]
            for tensor, result in zip(node.output_tensors, results):
                graph.names[id(tensor)] = result
    return [graph.names[id(t)] for t in model.outputs]


def _layer(graph: _Graph, layer: Any, sources: list[str], name: str) -> str:
    """Writes one Keras layer; returns the ONNX name of its output."""
    kind = type(layer).__name__
    if kind == "Conv2D":
        return _conv(graph, layer, sources[0], name)
    if kind == "Conv2DTranspose":
        return _conv_transpose(graph, layer, sources[0], name)
    if kind == "BatchNormalization":
        _require(layer, layer.axis in (-1, 3), "normalises a non-channel axis")
        ones = np.ones(layer.moving_mean.shape, np.float32)
        gamma = _numpy(layer.gamma) if layer.scale else ones
        beta = _numpy(layer.beta) if layer.center else ones * 0
        weights = [graph.weight(f"{name}/{part}", np.asarray(value, np.float32))
                   for part, value in (("gamma", gamma), ("beta", beta),
                                       ("mean", _numpy(layer.moving_mean)),
                                       ("variance", _numpy(layer.moving_variance)))]
        return graph.node("BatchNormalization", [sources[0]] + weights, name,
                          epsilon=float(layer.epsilon))
    if kind == "Activation":
        return _activation(graph, layer, layer.activation, sources[0], name)
    if kind == "MaxPooling2D":
        _require(layer, layer.padding == "valid", f"pads '{layer.padding}'")
        return graph.node("MaxPool", sources, name, kernel_shape=list(layer.pool_size),
                          strides=list(layer.strides))
    if kind == "Concatenate":
        _require(layer, layer.axis in (-1, 3), "joins along a non-channel axis")
        return graph.node("Concat", sources, name, axis=1)
    if kind == "Dropout":
        return graph.node("Identity", sources, name)  # training only
    if kind == "Average":
        return graph.node("Mean", sources, name)
    raise UnsupportedLayer(f"layer '{layer.name}' ({kind}) has no ONNX translation")


def _conv(graph: _Graph, layer: Any, source: str, name: str) -> str:
    _require(layer, tuple(layer.dilation_rate) == (1, 1) and layer.groups == 1,
             "is dilated or grouped")
    _require(layer, layer.data_format == "channels_last", "is channels-first")
    kernel = _numpy(layer.kernel)  # (kh, kw, in, out) -> ONNX (out, in, kh, kw)
    inputs = [source, graph.weight(f"{name}/kernel", kernel.transpose(3, 2, 0, 1))]
    if layer.use_bias:
        inputs.append(graph.weight(f"{name}/bias", _numpy(layer.bias)))
    pads = [0, 0, 0, 0]
    if layer.padding == "same":
        _require(layer, tuple(layer.strides) == (1, 1), "pads 'same' with strides")
        # Keras (as TensorFlow) puts an odd padding's extra pixel at the end
        begin = [(k - 1) // 2 for k in layer.kernel_size]
        pads = begin + [k - 1 - b for k, b in zip(layer.kernel_size, begin)]
    out = graph.node("Conv", inputs, f"{name}/conv" if _has_activation(layer) else name,
                     kernel_shape=list(layer.kernel_size), strides=list(layer.strides),
                     pads=pads)
    return _activation(graph, layer, layer.activation, out, name)


def _conv_transpose(graph: _Graph, layer: Any, source: str, name: str) -> str:
    _require(layer, tuple(layer.kernel_size) == tuple(layer.strides),
             "has a kernel unlike its strides")
    _require(layer, getattr(layer, "output_padding", None) is None, "has an output padding")
    kernel = _numpy(layer.kernel)  # (kh, kw, out, in) -> ONNX (in, out, kh, kw)
    inputs = [source, graph.weight(f"{name}/kernel", kernel.transpose(3, 2, 0, 1))]
    if layer.use_bias:
        inputs.append(graph.weight(f"{name}/bias", _numpy(layer.bias)))
    out = graph.node("ConvTranspose", inputs,
                     f"{name}/conv" if _has_activation(layer) else name,
                     kernel_shape=list(layer.kernel_size), strides=list(layer.strides))
    return _activation(graph, layer, layer.activation, out, name)


def _activation(graph: _Graph, layer: Any, function: Any, source: str, name: str) -> str:
    kind = getattr(function, "__name__", str(function))
    if kind == "linear":
        return source if source == name else graph.node("Identity", [source], name)
    if kind == "softmax":
        return graph.node("Softmax", [source], name, axis=1)
    if kind == "relu":
        return graph.node("Relu", [source], name)
    raise UnsupportedLayer(f"layer '{layer.name}' uses the activation '{kind}', which has no "
                           "ONNX translation here")


def _has_activation(layer: Any) -> bool:
    return getattr(layer.activation, "__name__", "") != "linear"


def _require(layer: Any, condition: bool, what: str) -> None:
    if not condition:
        raise UnsupportedLayer(f"layer '{layer.name}' ({type(layer).__name__}) {what}, which "
                               "has no ONNX translation here")


def _numpy(variable: Any) -> np.ndarray:
    from keras import ops

    return np.asarray(ops.convert_to_numpy(variable), dtype=np.float32)
