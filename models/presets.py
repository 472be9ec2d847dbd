"""The U-Net's architectures and the loss names: plain data, no Keras.

The Processing algorithms and the backend's choices (``backend/core/choices.py``) list the model
sizes and losses from here without importing Keras; ``models/unet.py`` and ``models/losses.py``
build what they name.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UNetConfig:
    """Architecture of a U-Net.

    Attributes:
        depth: number of down-sampling steps (the input size must be a multiple of 2**depth).
        filters: filters of the first level; each level down doubles them.
        dropout: dropout rate in the bottleneck and the deepest decoder level (with a spectral
            path: on the context branch's output).
        spectral: width of a per-pixel (1 x 1) path; 0 for none. With it the network is
            spectral-first: the pixel's own bands carry the decision, and the U-Net becomes a
            context branch of small receptive field beside it (see :func:`build_unet`).
    """

    depth: int = 4
    filters: int = 32
    dropout: float = 0.1
    spectral: int = 0


PRESETS: dict[str, UNetConfig] = {
    # "small" is the default: spectral-first. A per-pixel path (two 1 x 1 layers of 64) carries
    # the decision; a depth-1 U-Net of 16 filters beside it sees about 15 pixels around each
    # pixel, and its output is dropped at 0.3 in training. With a few dozen digitised polygons
    # a network that sees more learns the polygons' surroundings rather than their classes, and
    # maps polygons it never saw worse than a per-pixel random forest (docs/benchmarks.md).
    "small": UNetConfig(depth=1, filters=16, dropout=0.3, spectral=64),
    "medium": UNetConfig(depth=4, filters=32, dropout=0.1),
    "large": UNetConfig(depth=5, filters=48, dropout=0.2),
}


LOSSES = ("cross_entropy", "weighted_cross_entropy", "focal", "dice", "focal_dice")
"""Loss names (``models.losses.make_loss``), in the order the Processing algorithm lists them."""


def size_multiple(depth: int) -> int:
    """Input heights and widths must be multiples of this: one halving per level of depth."""
    return 2 ** int(depth)
