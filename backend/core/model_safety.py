"""What a model file may contain before Keras is allowed to read it.

A ``.keras`` file is a zip whose ``config.json`` names the Python module and class of every
object Keras rebuilds. Keras imports and calls what it names, so a file shared by a stranger can
run their code while it is loaded (several such holes were fixed in Keras up to 3.14, and more
may come). The plugin does not rely on Keras alone: before any deserialisation, this module
reads the archive with ``zipfile`` and ``json`` only and accepts nothing but what the plugin's
own U-Net builder (``models/unet.py``) and ensemble (``models/ensemble.py``) write. Everything else, any other module, any
``Lambda`` or unknown class, any odd archive entry, is refused with a message that names it.

``test/test_model_safety.py`` builds every preset and checks that this list covers it, so the
list and the builder cannot drift apart.
"""
from __future__ import annotations

import json
import zipfile
from typing import Any, Iterator

from .errors import UserError
from .onnx_model import is_onnx

CONFIG_ENTRY = "config.json"
ALLOWED_ENTRIES = frozenset({CONFIG_ENTRY, "metadata.json", "model.weights.h5",
                             "landcoverunet.json"})
"""The archive entries a plugin model file holds (Keras's three and the plugin's metadata)."""
MAX_CONFIG_BYTES = 16 * 1024 * 1024
"""A U-Net's config.json is tens of kilobytes; anything this large is not one."""

ALLOWED_CLASSES: dict[str | None, frozenset[str]] = {
    "keras.layers": frozenset({"InputLayer", "Conv2D", "Conv2DTranspose", "BatchNormalization",
                               "Activation", "MaxPooling2D", "Concatenate", "Dropout",
                               "Average"}),
    "keras.initializers": frozenset({"GlorotUniform", "Zeros", "Ones"}),
    "keras": frozenset({"DTypePolicy", "FloatDTypePolicy", "Functional"}),
    "keras.src.models.functional": frozenset({"Functional"}),
    None: frozenset({"__keras_tensor__"}),
}
"""Module -> the classes of it that the U-Net builder's models contain (layers, their
initialisers and dtype policies, the functional model, and tensor references between layers),
and an ensemble of them (``models/ensemble.py``: functional members and an ``Average``)."""

COMPILE_CLASSES: dict[str, frozenset[str]] = {
    "keras.optimizers": frozenset({"Adam", "AdamW"}),
    "keras.optimizers.schedules": frozenset({"CosineDecay"}),
    "keras.losses": frozenset({"SparseCategoricalCrossentropy"}),
    "keras.metrics": frozenset({"MeanIoU", "SparseCategoricalAccuracy"}),
}
"""Also allowed inside ``compile_config`` (a compiled model's training settings, which the
plugin never deserialises: it loads with ``compile=False``)."""
PLUGIN_PACKAGE = "landcoverunet"
"""The package name under which the plugin registers its losses and metrics
(``models/losses.PACKAGE``, which imports Keras; a test checks they agree)."""
PLUGIN_MODULES = ("models.losses", "models.metrics")
"""The plugin modules that define registered objects (under whatever folder it is installed)."""
ALLOWED_ACTIVATIONS = frozenset({"linear", "relu", "softmax"})
"""Activation names the builder uses (strings in a layer's config; anything else is refused)."""


def check_model_archive(path: str) -> None:
    """Refuses a model file that holds anything a Land Cover U-Net model never does.

    Reads only the zip directory and ``config.json``; never imports Keras.

    Raises:
        UserError: naming what is wrong, for a file that is not a zip, has unexpected entries,
            or whose configuration names a module, class or activation outside the allowlist.
    """
    if is_onnx(path):  # a graph of ONNX operators and weights: no code to run
        return
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            odd = [n for n in names if n not in ALLOWED_ENTRIES]
            if odd:
                raise UserError(_altered(path, f"the archive entry '{odd[0]}'"))
            if CONFIG_ENTRY not in names:
                raise UserError(f"'{path}' holds no network (config.json): it is not a model "
                                "file written by 'Train U-Net'.")
            if archive.getinfo(CONFIG_ENTRY).file_size > MAX_CONFIG_BYTES:
                raise UserError(_altered(path, "an oversized network description"))
            config = json.loads(archive.read(CONFIG_ENTRY).decode("utf-8"))
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError, json.JSONDecodeError,
            RuntimeError, NotImplementedError) as error:
        raise UserError(f"'{path}' cannot be read as a model file ({error}). Is it a complete "
                        ".keras file written by 'Train U-Net'?") from None
    check_model_config(config, path)


def check_model_config(config: Any, path: str = "the model file") -> None:
    """Walks a parsed ``config.json`` and refuses any object outside the allowlist.

    Raises:
        UserError: naming the first object found outside the allowlist.
    """
    if not isinstance(config, dict) or config.get("class_name") != "Functional":
        raise UserError(_altered(path, "a network that is not a Keras functional model"))
    for node, in_compile in _objects(config, False):
        module, name = node.get("module"), node.get("class_name")
        registered = node.get("registered_name")
        if not isinstance(name, str) or not (module is None or isinstance(module, str)):
            raise UserError(_altered(path, "an object without a proper class name"))
        label = f"{module}.{name}" if module else name
        if name == "Lambda" or "lambda" in name.lower():
            raise UserError(_altered(path, f"'{label}' (a Lambda layer, which holds code)"))
        if _plugin_object(module, registered) and in_compile:
            continue
        allowed = ALLOWED_CLASSES.get(module, frozenset())
        if in_compile:
            allowed = allowed | COMPILE_CLASSES.get(module or "", frozenset())
        if name not in allowed:
            raise UserError(_altered(path, f"'{label}'"))
        if registered not in (None, name):
            raise UserError(_altered(path, f"'{label}' registered as '{registered}'"))
        activation = node.get("config", {}).get("activation") if isinstance(
            node.get("config"), dict) else None
        if activation is not None and activation not in ALLOWED_ACTIVATIONS:
            shown = activation if isinstance(activation, str) else json.dumps(activation)[:80]
            raise UserError(_altered(path, f"the activation '{shown}'"))


def _plugin_object(module: str | None, registered: Any) -> bool:
    """A loss or metric the plugin registers (only in the training settings of a model)."""
    return (isinstance(registered, str) and registered.startswith(PLUGIN_PACKAGE + ">")
            and isinstance(module, str) and module.endswith(PLUGIN_MODULES)
            and module.split(".")[0].isidentifier())


def _objects(value: Any, in_compile: bool) -> Iterator[tuple[dict, bool]]:
    """Every serialised object (a dict with a ``class_name``) in a config, and whether it lies
    inside ``compile_config``."""
    if isinstance(value, dict):
        if "class_name" in value:
            yield value, in_compile
        for key, item in value.items():
            yield from _objects(item, in_compile or key == "compile_config")
    elif isinstance(value, list):
        for item in value:
            yield from _objects(item, in_compile)


def _altered(path: str, what: str) -> str:
    return (f"The model file '{path}' contains {what}, which a Land Cover U-Net model never "
            "does: it was not made by this plugin or was altered. It was not loaded; use a "
            "model file trained with 'Train U-Net' that you trust.")

