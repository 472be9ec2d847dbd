"""A per-pixel teacher: soft pseudo-labels for the pixels nobody digitised.

With a few dozen polygons a U-Net sees labels only inside them, and learns what surrounds them
rather than what they are: on polygons it never saw it maps worse than a per-pixel random forest
fitted on the same pixels. Here a per-pixel model (scikit-learn) is fitted on the training
features only, predicts class probabilities for a random sample of the scene's other pixels, and
those probabilities become soft targets there, weighted below the real labels. The U-Net then
learns the spectra everywhere in the scene, not only the polygons' surroundings, and its spatial
context smooths the teacher's pixel noise. The teacher is also distilled into the forest
network (``forest_student.py``) that the model file may average with the U-Net.

The teacher is a random forest and a logistic regression, their probabilities averaged
(:func:`teacher_model`). The forest sees each pixel's bands and, for every band, the mean and
standard deviation over the valid pixels of :data:`NEIGHBOURHOODS` square windows around it (3
and 7 pixels: inside the U-Net's own field of view, so the student can learn what the teacher
uses); on polygons it never saw, such a forest maps much better than one on the pixel alone
(docs/benchmarks.md, "The teacher"). The logistic regression sees the pixel's own bands: with
two or three polygons per class it extrapolates to polygons unlike them where the forest does
not (docs/benchmarks.md, "Issue 21, third session").

Held-out features are never seen by the teacher (it is fitted on training labels only); their
pixels are pseudo-labelled like any unlabelled pixel, as the held-out polygons of a real scene
would be. A scene too large to hold in memory is read in blocks near its labels
(``teacher_blocks.py``), with the same features for every pixel.
"""
from __future__ import annotations

import numpy as np

from ..core.progress import Progress

TREES = 100
"""Trees of the teacher forest."""
PIXELS_PER_CLASS = 20000
"""At most this many training pixels per class fit the teacher (a random sample of them): more
than the 5,000 of before gave a better teacher, and student, on the many-polygon scene."""
LINEAR_SHARE = 1 / 3
"""Weight of the logistic regression on the bands in the teacher's probabilities; the forest
has the rest. A linear model extrapolates to polygons unlike the training ones where a forest,
fitted tightly to two or three polygons per class, does not; the forest sees texture the
bands alone lack. Blended, they beat either on the held-out bench (docs/benchmarks.md)."""
PSEUDO_PIXELS = 400_000
"""At most this many unlabelled pixels per scene get a pseudo-label (a random sample)."""
PSEUDO_WEIGHT = 0.5
"""Weight of the pseudo-labelled pixels' loss against that of the labelled pixels."""
NEIGHBOURHOODS = (3, 7)
"""Edges in pixels of the windows whose band means and standard deviations the forest sees."""


def pixel_features(pixels: np.ndarray, valid: np.ndarray, where: np.ndarray) -> np.ndarray:
    """The forest's features of the pixels at flat indices ``where`` of a normalised scene.

    Each pixel's own bands, then per window edge of :data:`NEIGHBOURHOODS` and per band the
    mean and standard deviation of the valid pixels in that window (nodata never counts; at the
    scene's edge the window holds fewer pixels). One band is filtered at a time, so the memory
    beyond the scene is a few band-sized planes and the chosen pixels' features.

    Args:
        pixels: (H, W, C) normalised pixels, 0 where invalid.
        valid: (H, W) where the image has data.
        where: flat indices of the pixels wanted.
    """
    from scipy.ndimage import uniform_filter

    channels = pixels.shape[-1]
    columns = [pixels.reshape(-1, channels)[where]]
    weight = valid.astype(np.float32)
    for size in NEIGHBOURHOODS:
        share = np.maximum(uniform_filter(weight, size, mode="constant").ravel()[where], 1e-6)
        for c in range(channels):
            band = np.where(valid, pixels[..., c], np.float32(0))
            mean = uniform_filter(band, size, mode="constant").ravel()[where] / share
            square = uniform_filter(band * band, size, mode="constant").ravel()[where] / share
            columns += [mean[:, None], np.sqrt(np.maximum(square - mean * mean, 0))[:, None]]
    return np.concatenate(columns, axis=1).astype(np.float32)


def teacher_model(bands: int, seed: int):
    """The teacher, unfitted: a forest on :func:`pixel_features` and a logistic regression on
    their first ``bands`` columns (the pixel's own standardised bands), their probabilities
    averaged with :data:`LINEAR_SHARE` (scikit-learn's soft ``VotingClassifier``)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier, VotingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    forest = RandomForestClassifier(n_estimators=TREES, class_weight="balanced_subsample",
                                    min_samples_leaf=2, n_jobs=-1, random_state=seed)
    own_bands = ColumnTransformer([("bands", StandardScaler(), list(range(bands)))])
    linear = make_pipeline(own_bands, LogisticRegression(max_iter=2000,
                                                         class_weight="balanced"))
    return VotingClassifier([("forest", forest), ("linear", linear)], voting="soft",
                            weights=[1 - LINEAR_SHARE, LINEAR_SHARE])


def fit_teacher(readers: list, classes: int, seed: int, progress: Progress,
                extra: list | None = None):
    """Fits the teacher on training pixels of every in-memory scene and on ``extra`` samples
    ((features, class indices) pairs of the scenes read in blocks,
    ``teacher_blocks.training_pixels``); None when impossible."""
    rng = np.random.default_rng([seed, 13])
    features, targets = [], []
    for reader in readers:
        if not reader.in_memory:
            continue
        pixels, labels, valid, _ = reader.whole
        chosen = []
        for c in range(1, classes + 1):
            where = np.flatnonzero((labels == c).ravel() & valid.ravel())
            if len(where) > PIXELS_PER_CLASS:
                where = rng.choice(where, PIXELS_PER_CLASS, replace=False)
            chosen.append(where)
            targets.append(np.full(len(where), c - 1))
        features.append(pixel_features(pixels, valid, np.concatenate(chosen)))
    for found, classes_of in extra or []:
        if len(classes_of):
            features.append(found)
            targets.append(classes_of)
    if not features or len(np.unique(np.concatenate(targets))) < 2:
        return None
    model = teacher_model(len(readers[0].bands), seed)
    model.fit(np.concatenate(features), np.concatenate(targets))
    windows = " and ".join(f"{n} x {n}" for n in NEIGHBOURHOODS)
    large = sum(not reader.in_memory for reader in readers)
    progress.info(f"Teacher: a random forest of {TREES} trees (the bands, and the bands' mean "
                  f"and spread over {windows} pixels) and a logistic regression on the bands "
                  f"({LINEAR_SHARE:.0%} of the vote), fitted on "
                  f"{sum(len(t) for t in targets)} training pixels, give soft pseudo-labels to "
                  f"up to {PSEUDO_PIXELS:,} unlabelled pixels per scene (weight {PSEUDO_WEIGHT})"
                  + (f"; {large} scene(s) too large to hold in memory read in blocks near "
                     "their labels." if large else "."))
    return model


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
        flat = soft.reshape(-1, classes + 1)
        flat[candidates, :classes] = forest_probabilities(forest, pixels, valid, candidates,
                                                          classes)
        flat[candidates, classes] = 1.0
    return soft


def forest_probabilities(forest, pixels: np.ndarray, valid: np.ndarray, where: np.ndarray,
                         classes: int) -> np.ndarray:
    """(len(where), classes) the forest's class probabilities of pixels of one scene or window
    (flat indices ``where``), with the features it was fitted on."""
    probabilities = np.zeros((len(where), classes), np.float32)
    if len(where):
        probabilities[:, forest.classes_] = forest.predict_proba(
            pixel_features(pixels, valid, where))
    return probabilities
