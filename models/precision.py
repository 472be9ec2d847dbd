"""A network's precision belongs to the machine that runs it, not to its file.

A model trained on a GPU in mixed precision has layers whose dtype policy is ``mixed_float16``.
Kept in the file, that policy makes a CPU classify about three times slower than in float32
(CPUs have no fast float16 arithmetic), so the file is written in float32 and a file written
otherwise (by an older version) is brought back to float32 when loaded. Mixed precision keeps its
variables in float32, so the weights carry over unchanged.
"""
from __future__ import annotations

from typing import Any

FLOAT32 = "float32"
_POLICIES = ("DTypePolicy", "FloatDTypePolicy")


def float32_copy(model: Any) -> Any:
    """An uncompiled copy of ``model`` whose every layer computes in float32, same weights."""
    import keras

    config = model.get_config()
    _set_float32(config)
    copy = keras.Model.from_config(config)
    copy.set_weights(model.get_weights())
    return copy


def computes_in_float32(model: Any) -> bool:
    """Whether every layer of ``model`` computes in float32."""
    return all(getattr(layer.dtype_policy, "name", FLOAT32) == FLOAT32 for layer in model.layers)


def _set_float32(node: Any) -> None:
    """Rewrites, in place, every dtype policy of a layer configuration to float32."""
    if isinstance(node, dict):
        if node.get("class_name") in _POLICIES and isinstance(node.get("config"), dict):
            node["config"]["name"] = FLOAT32
            return
        for key, value in node.items():
            if key == "dtype" and isinstance(value, str) and value.startswith("mixed_"):
                node[key] = FLOAT32
            else:
                _set_float32(value)
    elif isinstance(node, list):
        for value in node:
            _set_float32(value)
