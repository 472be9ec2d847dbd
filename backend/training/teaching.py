"""Teaching: every training scene gets the teacher's pseudo-labels, held in memory or not.

``teacher.py`` is the teacher itself (its model, features and the sampling of a scene held in
memory); ``teacher_blocks.py`` reads a scene too large for memory in blocks near its labels.
This module fits one teacher on the training pixels of all the scenes, whichever way each is
read, and gives each scene its pseudo-labels; validation and the final fit call it.
"""
from __future__ import annotations

import numpy as np

from ..core.errors import Cancelled
from ..core.progress import Progress
from . import teacher_blocks
from .teacher import fit_teacher, pseudo_labels


def teach(readers: list, classes: int, seed: int, progress: Progress, reach: int):
    """Gives the scenes the pseudo-labels of a forest fitted on their training labels;
    returns the forest (None when none could be fitted), which validation also scores.

    A scene too large to hold in memory is read in blocks within ``reach`` pixels (the training
    windows' edge) of its labels, and gets sparse pseudo-labels there (``teacher_blocks.py``).
    """
    from ..core.deps import require_sklearn

    require_sklearn()
    near = {i: teacher_blocks.near_labels(reader, classes, reach, progress)
            for i, reader in enumerate(readers) if not reader.in_memory}
    rng = np.random.default_rng([seed, 19])
    samples = [teacher_blocks.training_pixels(readers[i], blocks, classes, rng, progress)
               for i, blocks in near.items()]
    forest = fit_teacher(readers, classes, seed, progress, samples)
    if progress.cancelled():  # the forest cannot be interrupted; its few seconds can
        raise Cancelled()
    if forest is None:
        progress.warn("No teacher: fewer than two classes have training pixels. Training goes "
                      "on from the labels alone.")
        return None
    for i, reader in enumerate(readers):
        if progress.cancelled():
            raise Cancelled()
        if reader.in_memory:
            reader.soft = pseudo_labels(reader, forest, classes, seed)
        else:
            reader.soft = teacher_blocks.pseudo_labels(reader, near[i], forest, classes, seed,
                                                       progress)
    return forest
