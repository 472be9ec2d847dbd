"""An average of networks as one Keras model: the same input, the mean of their probabilities.

Two networks trained on the same labels from different starts make different mistakes on
polygons neither saw; the mean of their class probabilities is steadier than either
(docs/benchmarks.md). Built from ``keras`` layers only, so it saves, loads and runs like a
single U-Net under every backend, and the classifier needs to know nothing about it.
"""
from __future__ import annotations

import keras
from keras import layers

MEMBER = "member_{}"
"""The name of the i-th (1-based) network inside an ensemble."""


def average_models(models: list[keras.Model], name: str = "ensemble") -> keras.Model:
    """One model whose output is the mean of ``models``' outputs (each renamed ``member_i``).

    The members are rebuilt from their configs under their new names (two networks of one
    builder share a name, which a functional model does not allow) and given their weights.
    """
    inputs = keras.Input(shape=models[0].input_shape[1:], name="image")
    outputs = []
    for i, model in enumerate(models, start=1):
        config = model.get_config() | {"name": MEMBER.format(i)}
        member = model.__class__.from_config(config)
        member.set_weights(model.get_weights())
        outputs.append(member(inputs))
    mean = layers.Average(name="mean_probabilities", dtype="float32")(outputs)
    return keras.Model(inputs, mean, name=name)


def members(model: keras.Model) -> list[keras.Model]:
    """The networks an ensemble averages; a single network is its own only member."""
    found = []
    while True:
        try:
            found.append(model.get_layer(MEMBER.format(len(found) + 1)))
        except ValueError:
            return found or [model]
