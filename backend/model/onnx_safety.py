"""What an ONNX model file may contain before ONNX Runtime is allowed to read it.

An ONNX file holds no Python code, but it is not inert: a tensor may keep its values in
"external data", a file the model names (``/etc/passwd``, ``../../secret``), which ONNX Runtime
reads as weights, so that a crafted graph can copy the bytes of any file the user can read into
the probabilities it writes. Custom-domain operators, functions and training sections call on
code and files beyond the standard operators. The plugin's exporter (``models/onnx_export.py``)
writes none of these: one graph of the few standard operators in :data:`EXPORTED_OPERATORS`,
its weights inside the file as float32.

This module reads the file's protobuf with nothing but the standard library and accepts only
that shape: every field is one the exporter writes (any other is refused, so no field that ONNX
Runtime would act on escapes the check), no tensor has external data, no operator outside the
list, no domain but the standard one, and every weight's declared size fits inside the file.
The checked bytes themselves go to ONNX Runtime (``onnx_runtime.py``), so the file cannot change
between the check and the load. ``test/test_onnx_export.py`` exports every preset and checks
that the list covers it.
"""
from __future__ import annotations

import os
from typing import Iterator

from ..core.choices import MAX_TILE_SIZE
from ..core.errors import UserError

EXPORTED_OPERATORS = frozenset({"Mul", "Add", "Identity", "Conv", "ConvTranspose",
                                "BatchNormalization", "Relu", "Softmax", "MaxPool", "Concat",
                                "Mean"})
"""The ONNX operators the exporter writes (normalisation, the U-Net's layers, an ensemble's
average); a graph with any other is not one of the plugin's."""
STANDARD_DOMAINS = frozenset({"", "ai.onnx"})
"""The standard operator set's names; any other domain names custom operators."""
MAX_ONNX_BYTES = 2 ** 31 - 1
"""Protobuf's own limit on one message: a larger ONNX file keeps its weights elsewhere."""
FLOAT = 1
"""TensorProto.FLOAT: the only weight type the exporter writes (4 bytes a value)."""
ORT_FORMAT_ID = b"ORTM"
"""ONNX Runtime's own (flatbuffer) format carries this at bytes 4 to 8; such a file is not
ONNX and would skip this check, so it is refused."""

# field numbers (onnx.proto) that the exporter's files hold, per message
MODEL_FIELDS = {1: "ir_version", 2: "producer_name", 3: "producer_version", 4: "domain",
                5: "model_version", 6: "doc_string", 7: "graph", 8: "opset_import",
                14: "metadata_props"}
GRAPH_FIELDS = {1: "node", 2: "name", 5: "initializer", 10: "doc_string", 11: "input",
                12: "output", 13: "value_info"}
NODE_FIELDS = {1: "input", 2: "output", 3: "name", 4: "op_type", 5: "attribute",
               6: "doc_string", 7: "domain"}
ATTRIBUTE_FIELDS = {1: "name", 2: "f", 3: "i", 4: "s", 7: "floats", 8: "ints", 9: "strings",
                    13: "doc_string", 20: "type"}
"""Numbers and strings only: no tensor, graph or sparse tensor inside an attribute."""
TENSOR_FIELDS = {1: "dims", 2: "data_type", 4: "float_data", 8: "name", 9: "raw_data",
                 12: "doc_string"}
"""No ``external_data`` (13) nor ``data_location`` (14): the weights are in the file."""
OPSET_FIELDS = {1: "domain", 2: "version"}
VALUE_INFO_FIELDS = {1: "name", 2: "type", 3: "doc_string"}
TYPE_FIELDS = {1: "tensor_type", 6: "denotation"}
TENSOR_TYPE_FIELDS = {1: "elem_type", 2: "shape"}
SHAPE_FIELDS = {1: "dim"}
DIMENSION_FIELDS = {1: "dim_value", 2: "dim_param", 3: "denotation"}
"""A declared input, output or intermediate: a tensor of named or fixed sizes, nothing else."""
EXTERNAL = "external data (weights read from a file it names)"
REFUSED_FIELDS = {("a weight", 13): EXTERNAL, ("a weight", 14): EXTERNAL,
                  ("the model", 20): "a training section", ("the model", 25): "functions",
                  ("the graph", 15): "sparse weights",
                  **{("an operator's attribute", n): "a tensor or graph" for n in
                     (5, 6, 10, 11, 22, 23)}}
"""What the refused fields that matter are, in words (others are named by number)."""
VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5


class _Refused(Exception):
    """Something the exporter never writes, in words."""


class _Damaged(_Refused):
    """Bytes that are not a protobuf message at all."""


def check_onnx_bytes(data: bytes, path: str) -> None:
    """Refuses an ONNX file that holds anything the plugin's exporter never writes.

    Raises:
        UserError: naming what was found (external data, an operator, a domain, a field).
    """
    try:
        if len(data) >= 8 and bytes(data[4:8]) == ORT_FORMAT_ID:
            raise _Refused("ONNX Runtime's own format instead of ONNX")
        _check_model(memoryview(data), len(data))
    except _Damaged as damaged:
        raise UserError(f"The ONNX file '{path}' could not be opened ({damaged}): it is "
                        "damaged or not an ONNX model. Export it again with 'Export model'."
                        ) from None
    except _Refused as refused:
        raise UserError(f"The ONNX file '{path}' contains {refused}, which a model exported by "
                        "Land Cover U-Net never does: it was not made by this plugin or was "
                        "altered. It was not opened; export the model again with 'Export model' "
                        "from a .keras file you trust.") from None


def read_checked_onnx(path: str) -> bytes:
    """The bytes of an ONNX file, once :func:`check_onnx_bytes` accepts them.

    Raises:
        UserError: a file too large to be an ONNX model, unreadable, or refused.
    """
    try:
        size = os.path.getsize(path)
        if size > MAX_ONNX_BYTES:
            raise UserError(f"The ONNX file '{path}' is {size / 2 ** 30:.1f} GiB, larger than "
                            "any ONNX model can be (2 GiB): it is not a model exported by "
                            "Land Cover U-Net.")
        with open(path, "rb") as handle:
            data = handle.read(MAX_ONNX_BYTES + 1)
    except OSError as error:
        raise UserError(f"The ONNX file '{path}' cannot be read ({error.strerror or error}).") \
            from None
    check_onnx_bytes(data, path)
    return data


def _check_model(data: memoryview, file_size: int) -> None:
    for number, wire, value in _fields(data, MODEL_FIELDS, "the model"):
        if number == 7:
            _check_graph(_message(value, wire), file_size)
        elif number == 8:
            for field, kind, item in _fields(_message(value, wire), OPSET_FIELDS, "an opset"):
                if field == 1 and _text(item, kind) not in STANDARD_DOMAINS:
                    raise _Refused(f"the operator domain '{_shown(item)}'")


def _check_graph(graph: memoryview, file_size: int) -> None:
    for number, wire, value in _fields(graph, GRAPH_FIELDS, "the graph"):
        if number == 1:
            _check_node(_message(value, wire))
        elif number == 5:
            _check_tensor(_message(value, wire), file_size)
        elif number in (11, 12, 13):
            _check_value_info(_message(value, wire))


def _check_node(node: memoryview) -> None:
    for number, wire, value in _fields(node, NODE_FIELDS, "an operator"):
        if number == 4 and _text(value, wire) not in EXPORTED_OPERATORS:
            raise _Refused(f"the operator '{_shown(value)}'")
        if number == 7 and _text(value, wire) not in STANDARD_DOMAINS:
            raise _Refused(f"a custom operator (domain '{_shown(value)}')")
        if number == 5:
            list(_fields(_message(value, wire), ATTRIBUTE_FIELDS, "an operator's attribute"))


def _check_tensor(tensor: memoryview, file_size: int) -> None:
    count = 1
    for number, wire, value in _fields(tensor, TENSOR_FIELDS, "a weight"):
        if number == 1:
            for dim in _varints(value, wire):
                count *= dim
        elif number == 2 and (wire != VARINT or value != FLOAT):
            raise _Refused("a weight that is not float32")
        if count * 4 > file_size:  # its values could not be in the file
            raise _Refused("a weight larger than the file itself")


def _check_value_info(info: memoryview) -> None:
    """Declared sizes stay within a training tile: ONNX Runtime plans memory from them."""
    nested = [(VALUE_INFO_FIELDS, "a declared tensor", 2), (TYPE_FIELDS, "a tensor type", 1),
              (TENSOR_TYPE_FIELDS, "a tensor type", 2), (SHAPE_FIELDS, "a tensor shape", 1)]
    messages = [info]
    for allowed, where, inner in nested:
        messages = [_message(value, wire) for message in messages
                    for number, wire, value in _fields(message, allowed, where)
                    if number == inner]
    for dimension in messages:
        for number, wire, value in _fields(dimension, DIMENSION_FIELDS, "a tensor shape"):
            if number == 1 and (wire != VARINT or not 0 <= value <= MAX_TILE_SIZE):
                raise _Refused(f"a declared size of {value} (at most {MAX_TILE_SIZE})")


def _fields(data: memoryview, allowed: dict[int, str], where: str
            ) -> Iterator[tuple[int, int, object]]:
    """(field number, wire type, value) of a protobuf message: an int for varints, a
    memoryview for the rest. A field outside ``allowed`` is refused by number."""
    position, end = 0, len(data)
    while position < end:
        key, position = _varint(data, position)
        number, wire = key >> 3, key & 7
        if wire not in (VARINT, FIXED64, LENGTH, FIXED32) or number == 0:
            raise _Damaged(f"a damaged record in {where}")
        if number not in allowed:
            what = REFUSED_FIELDS.get((where, number), f"field {number}")
            raise _Refused(f"{what} in {where}")
        if wire == VARINT:
            value, position = _varint(data, position)
        elif wire == LENGTH:
            length, position = _varint(data, position)
            value = data[position:position + length]
            position += length
        else:
            value = data[position:position + (8 if wire == FIXED64 else 4)]
            position += 8 if wire == FIXED64 else 4
        if position > end:
            raise _Damaged(f"a record running past the end of {where}")
        yield number, wire, value


def _varint(data: memoryview, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= len(data) or shift > 63:
            raise _Damaged("a damaged number")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, position


def _varints(value: object, wire: int) -> Iterator[int]:
    """The values of a repeated integer field, packed or one per record."""
    if wire == VARINT:
        yield int(value)  # type: ignore[arg-type]
    elif wire == LENGTH:
        position = 0
        while position < len(value):  # type: ignore[arg-type]
            number, position = _varint(value, position)  # type: ignore[arg-type]
            yield number
    else:
        raise _Damaged("a damaged weight shape")


def _message(value: object, wire: int) -> memoryview:
    if wire != LENGTH:
        raise _Damaged("a damaged record")
    return value  # type: ignore[return-value]


def _text(value: object, wire: int) -> str:
    if wire != LENGTH:
        raise _Damaged("a damaged record")
    try:
        return bytes(value).decode("utf-8")  # type: ignore[arg-type]
    except UnicodeDecodeError:
        raise _Refused("a name that is not text") from None


def _shown(value: object) -> str:
    return bytes(value)[:60].decode("utf-8", "replace")  # type: ignore[arg-type]
