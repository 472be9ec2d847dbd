"""The names of every choice a user makes, in the order the algorithms list them; no Keras.

One owner each: the model sizes and losses come from ``models/presets.py`` (what the Keras
builders build), the test-time augmentation modes and devices are defined here. The Processing
algorithms pair each name with a label; the backend checks settings against these names.
"""
from __future__ import annotations

from ...models.presets import LOSSES, PRESETS, size_multiple

MODEL_SIZES: tuple[str, ...] = tuple(PRESETS)
"""U-Net architectures (``models.presets.PRESETS``)."""

TTA_NONE, TTA_FLIPS, TTA_DIHEDRAL = "none", "flips", "dihedral"
TTA_MODES = (TTA_NONE, TTA_FLIPS, TTA_DIHEDRAL)
"""Test-time augmentation: none, the 4 flips, or all 8 flips and rotations of a window."""

DEVICES = ("auto", "cpu", "gpu")
"""Where training runs: the GPU when there is one, or forced."""

MIN_TILE_SIZE, MAX_TILE_SIZE = 16, 4096
"""The training tile sizes 'Train U-Net' offers, in pixels; a model file claiming a larger one
(or an ONNX graph taking larger windows) was not written by it."""

__all__ = ["LOSSES", "MODEL_SIZES", "PRESETS", "TTA_MODES", "TTA_NONE", "TTA_FLIPS", "TTA_DIHEDRAL",
           "DEVICES", "MIN_TILE_SIZE", "MAX_TILE_SIZE", "size_multiple"]
