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

import contextlib
import json
import stat
import zipfile
from typing import Any, Iterator

from ..core.errors import UserError

CONFIG_ENTRY = "config.json"
WEIGHTS_ENTRY = "model.weights.h5"
ALLOWED_ENTRIES = frozenset({CONFIG_ENTRY, "metadata.json", WEIGHTS_ENTRY,
                             "landcoverunet.json"})
"""The archive entries a plugin model file holds (Keras's three and the plugin's metadata)."""
MAX_CONFIG_BYTES = 16 * 1024 * 1024
"""A U-Net's config.json and the plugin's metadata are tens of kilobytes; anything this large
unpacked is not one (the limit of each archive entry but the weights)."""
MAX_WEIGHTS_BYTES = 2 * 1024 ** 3
"""The weights of the largest network the plugin writes (an average of two 'large' U-Nets,
float32, no optimizer state) take about 600 MB; an entry that unpacks to more is not one."""
MAX_PACKING = 50
"""Weights and JSON pack to at best a tenth or so of their size; an entry of more than
:data:`PACKED_FLOOR` bytes that unpacks to this many times its packed size is a zip bomb."""
PACKED_FLOOR = 1024 * 1024
PACKINGS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
"""How Keras and the plugin pack the entries (stored or deflated)."""

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
MAX_FILTERS = 4096
"""More filters than any layer of the presets has (the 'large' U-Net's deepest has 1536)."""
MAX_KERNEL = 7
"""A larger kernel, pool or stride side than the builders use (3, 2 and 1)."""


def check_keras_archive(path: str) -> None:
    """Refuses a ``.keras`` file that holds anything a Land Cover U-Net model never does.

    Reads only the zip directory and ``config.json``; never imports Keras.

    Raises:
        UserError: naming what is wrong, for a file that is not a zip, has unexpected entries,
            or whose configuration names a module, class or activation outside the allowlist.
    """
    from .weights_safety import check_weights

    try:
        with model_archive(path) as archive:
            if CONFIG_ENTRY not in archive.namelist():
                raise UserError(f"'{path}' holds no network (config.json): it is not a model "
                                "file written by 'Train U-Net'.")
            config = json.loads(read_entry(archive, CONFIG_ENTRY, path).decode("utf-8"))
            check_model_config(config, path)
            if WEIGHTS_ENTRY in archive.namelist():
                with archive.open(WEIGHTS_ENTRY) as weights:
                    check_weights(weights, archive.getinfo(WEIGHTS_ENTRY).file_size, path)
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError, json.JSONDecodeError,
            RuntimeError, NotImplementedError, EOFError) as error:
        raise UserError(f"'{path}' cannot be read as a model file ({error}). Is it a complete "
                        ".keras file written by 'Train U-Net'?") from None


@contextlib.contextmanager
def model_archive(path: str) -> Iterator[zipfile.ZipFile]:
    """The model file as an open zip, once its directory lists only entries a plugin model
    holds, each once, plain files packed the usual way, of sizes a model can have.

    Checks what each entry declares before a byte is unpacked, so a zip bomb costs nothing;
    :func:`read_entry` then reads no more than was declared.

    Raises:
        UserError: naming the entry and what is wrong with it.
        zipfile.BadZipFile, OSError: a file that is no zip or cannot be read.
    """
    with zipfile.ZipFile(path) as archive:
        entries = archive.infolist()
        names = [entry.filename for entry in entries]
        odd = [n for n in names if n not in ALLOWED_ENTRIES]
        if odd:
            raise UserError(_altered(path, f"the archive entry '{odd[0]}'"))
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise UserError(_altered(path, f"the archive entry '{twice[0]}' twice"))
        for entry in entries:
            _check_entry(entry, path)
        yield archive


def _check_entry(entry: zipfile.ZipInfo, path: str) -> None:
    name, size = entry.filename, entry.file_size
    limit = MAX_WEIGHTS_BYTES if name == WEIGHTS_ENTRY else MAX_CONFIG_BYTES
    if stat.S_ISLNK(entry.external_attr >> 16) or entry.is_dir():
        raise UserError(_altered(path, f"the archive entry '{name}' as a link or folder"))
    if entry.flag_bits & 0x1 or entry.compress_type not in PACKINGS:
        raise UserError(_altered(path, f"the archive entry '{name}' encrypted or packed in "
                                       "an unusual way"))
    if size > limit or (size > PACKED_FLOOR and size > MAX_PACKING * entry.compress_size):
        raise UserError(_altered(
            path, f"the archive entry '{name}' that unpacks to {size / 2 ** 20:,.0f} MB from "
                  f"{entry.compress_size / 2 ** 20:,.1f} MB (a 'zip bomb', made to exhaust "
                  "memory)"))


def read_entry(archive: zipfile.ZipFile, name: str, path: str) -> bytes:
    """An entry of a :func:`model_archive`, read with a cap: never more than its declared size
    (which the archive's check has bounded), whatever the packed data would inflate to."""
    entry = archive.getinfo(name)
    with archive.open(entry) as handle:
        data = handle.read(entry.file_size + 1)
    if len(data) > entry.file_size:
        raise UserError(_altered(path, f"the archive entry '{name}' larger than it declares"))
    return data


def check_model_config(config: Any, path: str = "the model file") -> None:
    """Walks a parsed ``config.json`` and refuses any object outside the allowlist.

    Raises:
        UserError: naming the first object found outside the allowlist.
    """
    if not isinstance(config, dict) or config.get("class_name") != "Functional":
        raise UserError(_altered(path, "a network that is not a Keras functional model"))
    try:
        nodes = list(_objects(config, False))
    except RecursionError:
        raise UserError(_altered(path, "a network description nested too deeply")) from None
    for node, in_compile in nodes:
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
        settings = node.get("config") if isinstance(node.get("config"), dict) else {}
        activation = settings.get("activation")
        if activation is not None and (not isinstance(activation, str)
                                       or activation not in ALLOWED_ACTIVATIONS):
            shown = activation if isinstance(activation, str) else json.dumps(activation)[:80]
            raise UserError(_altered(path, f"the activation '{shown}'"))
        _check_sizes(settings, label, path)


def _check_sizes(settings: dict, label: str, path: str) -> None:
    """Refuses layer sizes far beyond any preset's: Keras would allocate the weights of such a
    layer (gigabytes) before it found that the file's weights do not match."""
    filters = settings.get("filters")
    if filters is not None and not (isinstance(filters, int) and 1 <= filters <= MAX_FILTERS):
        raise UserError(_altered(path, f"'{label}' with {json.dumps(filters)[:40]} filters"))
    for key in ("kernel_size", "pool_size", "strides"):
        value = settings.get(key)
        if value is not None and not (isinstance(value, list) and all(
                isinstance(v, int) and 1 <= v <= MAX_KERNEL for v in value)):
            raise UserError(_altered(path, f"'{label}' with the {key} "
                                           f"{json.dumps(value)[:40]}"))


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

