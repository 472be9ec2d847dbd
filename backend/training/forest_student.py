"""The teacher forest distilled into a per-pixel network (``models/forest_network.py``).

The U-Net learns from the forest's pseudo-labels but does not always follow it: on scenes with
a few small polygons it can map polygons it never saw far worse than the forest did (issue 21:
0.62 against 0.93). So every validated run also distils its forest into a small per-pixel
network, scored on the same held-out features as the U-Net; the model file is then whichever
of the U-Net, this network or their average validated best (``choice.py``). The written model
cannot lose badly to the forest on the user's labels, and it stays one Keras network that
classifies without scikit-learn.

Distillation is cheap: the network's fixed layers compute every pixel's features once, and only
its per-pixel head trains, on the pixels the teacher pseudo-labelled (its probabilities) and on
the training labels (one-hot, weighted so that they count half as much as the pseudo-labels in
all). About ten seconds on two cores for 400,000 pixels.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..core.errors import Cancelled
from ..core.progress import Progress

PASSES = 8
"""Passes over the pixels the head is trained on, within :data:`MIN_STEPS` to :data:`STEPS`."""
STEPS = 1500
"""At most this many training steps (about 8 passes over 400,000 pixels)."""
MIN_STEPS = 300
"""At least this many steps, however few the pixels (a small scene repeats its pixels)."""
BATCH = 2048
LEARNING_RATE = 3e-3
LABEL_SHARE = 0.5
"""The training labels' total weight against that of the pseudo-labelled pixels."""
STRIP = 256
"""Rows of a scene whose features are computed at once (memory stays a few hundred MB)."""


def scene_features(features: Any, pixels: np.ndarray, where: np.ndarray) -> np.ndarray:
    """(len(where), F) features of the pixels at flat indices ``where`` of an (H, W, C) scene,
    computed strip by strip with enough rows around each strip that every value is exact."""
    from ...models.forest_network import field_radius

    height, width, _ = pixels.shape
    margin = field_radius()
    rows = where // width
    out = None
    for top in range(0, height, STRIP):
        mine = np.flatnonzero((rows >= top) & (rows < top + STRIP))
        if not len(mine):
            continue
        lo, hi = max(0, top - margin), min(height, top + STRIP + margin)
        planes = np.asarray(features.predict_on_batch(pixels[None, lo:hi]))[0]
        if out is None:
            out = np.empty((len(where), planes.shape[-1]), np.float32)
        local = where[mine] - lo * width
        out[mine] = planes.reshape(-1, planes.shape[-1])[local]
    return out if out is not None else np.empty((0, 0), np.float32)


def scene_pixels(features: Any, reader, classes: int, seed: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features, class indices of the labelled pixels, pseudo-labels) of a scene in memory:
    every training pixel, then every pseudo-labelled pixel, in that order."""
    pixels, labels, valid, _ = reader.whole
    flat_labels = labels.ravel()
    labelled = np.flatnonzero((flat_labels > 0) & valid.ravel())
    soft = reader.soft.reshape(-1, classes + 1)
    pseudo = np.flatnonzero(soft[:, classes] > 0)
    x = scene_features(features, pixels, np.concatenate([labelled, pseudo]))
    return (x, flat_labels[labelled].astype(np.int64) - 1,
            soft[pseudo, :classes].astype(np.float32))


def block_pixels(features: Any, reader, classes: int, seed: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same for a scene too large to hold in memory (``teacher_blocks.py``): its blocks
    near the labels are read one at a time, with every pseudo-labelled pixel and a random
    sample of at most about ``PSEUDO_PIXELS`` training pixels."""
    from ...models.forest_network import field_radius
    from .teacher import PSEUDO_PIXELS
    from .teacher_blocks import read_block

    near, margin = reader.soft.near, field_radius()
    rng = np.random.default_rng([seed, 23])
    rate = min(1.0, PSEUDO_PIXELS / max(int(near.counts.sum()), 1))
    inputs, labelled_classes, softs = [], [], []
    for x, y, w, h in near.blocks:
        pixels, labels, valid, inner = read_block(reader, (x, y, w, h), margin)
        flat_labels = labels.ravel()
        labelled = np.flatnonzero((flat_labels > 0) & valid.ravel() & inner.ravel())
        labelled = labelled[rng.random(len(labelled)) < rate]
        soft = np.zeros(labels.shape + (classes + 1,), np.float16)
        soft[margin:margin + h, margin:margin + w] = reader.soft[y:y + h, x:x + w]
        soft = soft.reshape(-1, classes + 1)
        pseudo = np.flatnonzero(soft[:, classes] > 0)
        if not len(labelled) and not len(pseudo):
            continue
        planes = np.asarray(features.predict_on_batch(pixels[None]))[0]
        planes = planes.reshape(-1, planes.shape[-1])
        inputs += [planes[labelled], planes[pseudo]]
        labelled_classes.append(flat_labels[labelled].astype(np.int64) - 1)
        softs.append(soft[pseudo, :classes].astype(np.float32))
    if not inputs:
        return (np.zeros((0, 0), np.float32), np.zeros(0, np.int64),
                np.zeros((0, classes), np.float32))
    # labelled pixels first, then pseudo-labelled ones, as for a scene in memory
    return (np.concatenate(inputs[0::2] + inputs[1::2]), np.concatenate(labelled_classes),
            np.concatenate(softs))


def distil_forest(readers: list, classes: int, seed: int, progress: Progress) -> Any | None:
    """A forest network fitted on the teacher's pseudo-labels and the training labels of the
    scenes (``reader.soft``, set by ``teaching.teach``); None without them."""
    import keras

    from ...models.forest_network import (build_forest_network, dense_head, feature_model,
                                           load_head)

    scenes = [r for r in readers if r.soft is not None]
    if not scenes:
        return None
    keras.utils.set_random_seed(seed)
    network = build_forest_network(len(scenes[0].bands), classes)
    features = feature_model(network)
    inputs, targets, weights = [], [], []
    for reader in scenes:
        read = scene_pixels if reader.in_memory else block_pixels
        x, labelled, soft = read(features, reader, classes, seed)
        if not len(x):
            continue
        inputs.append(x)
        hard = np.zeros((len(labelled), classes), np.float32)
        hard[np.arange(len(labelled)), labelled] = 1.0
        targets.append(np.concatenate([hard, soft]))
        weights.append(np.concatenate([np.full(len(labelled), -1.0, np.float32),
                                       np.ones(len(soft), np.float32)]))
        if progress.cancelled():
            raise Cancelled()
    if not inputs:
        return None
    x, y, w = np.concatenate(inputs), np.concatenate(targets), np.concatenate(weights)
    labelled = w < 0  # marked above; their weight is set from the two counts here
    if not labelled.any():
        return None
    pseudo_total = float((~labelled).sum())
    w[labelled] = (LABEL_SHARE * pseudo_total / labelled.sum()) if pseudo_total else 1.0
    w /= w.mean()
    head = dense_head(network)
    head.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE), loss="categorical_crossentropy")
    per_pass = -(-len(x) // BATCH)
    epochs = max(1, round(min(STEPS, max(MIN_STEPS, PASSES * per_pass)) / per_pass))

    class Cancel(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if progress.cancelled():
                self.model.stop_training = True

    head.fit(x, y, sample_weight=w, batch_size=BATCH, epochs=epochs, shuffle=True, verbose=0,
             callbacks=[Cancel()])
    if progress.cancelled():
        raise Cancelled()
    load_head(network, head)
    progress.info(f"Forest network: the teacher distilled into a per-pixel network "
                  f"({network.count_params():,} weights) on {int(labelled.sum()):,} labelled "
                  f"and {int(pseudo_total):,} pseudo-labelled pixels, {epochs * per_pass} steps.")
    return network
