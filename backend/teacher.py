"""A per-pixel random forest as teacher: soft pseudo-labels for the pixels nobody digitised.

With a few dozen polygons a U-Net sees labels only inside them, and learns what surrounds them
rather than what they are: on polygons it never saw it maps worse than a per-pixel random forest
fitted on the same pixels. Here such a forest (scikit-learn) is fitted on the training features
only, predicts class probabilities for a random sample of the scene's other pixels, and those
probabilities become soft targets there, weighted below the real labels. The U-Net then learns
the spectra everywhere in the scene, not only the polygons' surroundings, and its spatial context
smooths the forest's pixel noise; what the file holds is the U-Net alone.

Held-out features are never seen by the teacher (it is fitted on training labels only); their
pixels are pseudo-labelled like any unlabelled pixel, as the held-out polygons of a real scene
would be.
"""
from __future__ import annotations

import numpy as np

from .progress import Progress

TREES = 100
"""Trees of the teacher forest."""
PIXELS_PER_CLASS = 5000
"""At most this many training pixels per class fit the teacher (sampled evenly over features)."""
PSEUDO_PIXELS = 400_000
"""At most this many unlabelled pixels per scene get a pseudo-label (a random sample)."""
PSEUDO_WEIGHT = 0.5
"""Weight of the pseudo-labelled pixels' loss against that of the labelled pixels."""


def fit_teacher(readers: list, classes: int, seed: int, progress: Progress):
    """Fits the forest on training pixels of every in-memory scene; None when impossible."""
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng([seed, 13])
    features, targets = [], []
    for reader in readers:
        if not reader.in_memory:
            continue
        pixels, labels, valid, _ = reader.whole
        for c in range(1, classes + 1):
            where = np.flatnonzero((labels == c).ravel() & valid.ravel())
            if len(where) > PIXELS_PER_CLASS:
                where = rng.choice(where, PIXELS_PER_CLASS, replace=False)
            features.append(pixels.reshape(-1, pixels.shape[-1])[where])
            targets.append(np.full(len(where), c - 1))
    if not features or len(np.unique(np.concatenate(targets))) < 2:
        return None
    forest = RandomForestClassifier(n_estimators=TREES, class_weight="balanced_subsample",
                                    min_samples_leaf=2, n_jobs=-1, random_state=seed)
    forest.fit(np.concatenate(features), np.concatenate(targets))
    progress.info(f"Teacher: a random forest of {TREES} trees on "
                  f"{sum(len(t) for t in targets)} training pixels gives soft pseudo-labels to "
                  f"up to {PSEUDO_PIXELS:,} unlabelled pixels per scene (weight {PSEUDO_WEIGHT}).")
    return forest


def pseudo_labels(reader, forest, classes: int, seed: int) -> np.ndarray:
    """(H, W, classes + 1) float16: the forest's probabilities and a weight (1 where given).

    Pixels with a training label, or without image data, get weight 0.
    """
    pixels, labels, valid, _ = reader.whole
    height, width = labels.shape
    soft = np.zeros((height, width, classes + 1), np.float16)
    candidates = np.flatnonzero(valid.ravel() & (labels.ravel() == 0))
    rng = np.random.default_rng([seed, 17])
    if len(candidates) > PSEUDO_PIXELS:
        candidates = np.sort(rng.choice(candidates, PSEUDO_PIXELS, replace=False))
    if len(candidates):
        probabilities = np.zeros((len(candidates), classes), np.float32)
        probabilities[:, forest.classes_] = forest.predict_proba(
            pixels.reshape(-1, pixels.shape[-1])[candidates])
        flat = soft.reshape(-1, classes + 1)
        flat[candidates, :classes] = probabilities
        flat[candidates, classes] = 1.0
    return soft
