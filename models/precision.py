"""A network's precision belongs to the machine that runs it, not to its file.

A model trained on a GPU in mixed precision has layers whose dtype policy is ``mixed_float16``.
Kept in the file, that policy makes a CPU classify about three times slower than in float32
(CPUs have no fast float16 arithmetic), so the file is written in float32 and a file written
otherwise (by an older version) is brought back to float32 when loaded. On a GPU, classification
loads the network in mixed precision instead (float16 arithmetic, which GPUs run fast), with the
output layers kept in float32 as in training. Mixed precision keeps its variables in float32, so
the weights carry over unchanged either way.
"""
from __future__ import annotations

from typing import Any

FLOAT32 = "float32"
MIXED = "mixed_float16"
OUTPUT_LAYERS = ("probabilities", "mean_probabilities")
"""The layers that stay float32 in mixed precision, so the softmax and the ensemble's mean are
computed stably (``models/unet.py`` and ``models/ensemble.py`` name them)."""
_POLICIES = ("DTypePolicy", "FloatDTypePolicy")


def float32_copy(model: Any) -> Any:
    """An uncompiled copy of ``model`` whose every layer computes in float32, same weights."""
    return precision_copy(model, FLOAT32)


def precision_copy(model: Any, policy: str) -> Any:
    """An uncompiled copy of ``model`` in ``policy`` (float32 or mixed_float16), same weights;
    in mixed precision the output layers (:data:`OUTPUT_LAYERS`) stay float32."""
    import keras

    config = model.get_config()
    _set_policy(config, policy)
    copy = keras.Model.from_config(config)
    copy.set_weights(model.get_weights())
    return copy


def computes_in_float32(model: Any) -> bool:
    """Whether every layer of ``model`` computes in float32."""
    return all(getattr(layer.dtype_policy, "name", FLOAT32) == FLOAT32 for layer in model.layers)


def _set_policy(node: Any, policy: str, keep: bool = False) -> None:
    """Rewrites, in place, every dtype policy of a layer configuration to ``policy`` (those of
    the output layers, ``keep``, to float32)."""
    if isinstance(node, dict):
        keep = keep or (policy != FLOAT32 and node.get("name") in OUTPUT_LAYERS
                        and "class_name" not in node)  # a layer's own config
        if node.get("class_name") in _POLICIES and isinstance(node.get("config"), dict):
            node["config"]["name"] = FLOAT32 if keep else policy
            return
        for key, value in node.items():
            if key == "dtype" and isinstance(value, str) and value.startswith("mixed_"):
                node[key] = FLOAT32 if keep else policy  # a policy by name (older files)
            else:  # plain dtypes (of inputs and tensors) stay as they are
                _set_policy(value, policy, keep)
    elif isinstance(node, list):
        for value in node:
            _set_policy(value, policy, keep)
