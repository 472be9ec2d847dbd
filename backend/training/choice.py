"""Which network the model file holds, decided on the user's own labels.

Every validated run scores, on the same held-out features, the U-Net (at every epoch), the
teacher forest, the forest distilled into a per-pixel network (``forest_student.py``) and the
mean of the U-Net's and that network's probabilities. The forest is reported beside them
("your labels: forest X, U-Net Y") but is not a candidate: the model file is one Keras network
that classifies without scikit-learn.

The average is written unless one network alone validates better with confidence (a paired
bootstrap over the held-out features, ``interval.chance_better``, at least :data:`SURE`), and
only where every class has ``interval.FEW_FEATURES`` validated features or more. With a
few dozen polygons, validation cannot rank the candidates (on the held-out bench it ranked the
U-Net first on scenes where it mapped worst, docs/benchmarks.md), while the average is never far
below the better of its two members: where the U-Net's context helps it keeps most of that, and
where the U-Net loses a class the forest network keeps it on the map. So the model cannot lose
badly to the forest on the user's labels, whatever the scene.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .interval import (FEW_FEATURES, LEVEL, SURE, bootstrap_interval, chance_better,
                       few_classes, miou_of, share_corrected)

NETWORK, AVERAGE, FOREST_NETWORK, FOREST = "U-Net", "U-Net + forest network", \
    "forest network", "forest"
CANDIDATES = (NETWORK, AVERAGE, FOREST_NETWORK)
"""What the model file may hold. A network alone replaces the average only when it validates
better in ``interval.SURE`` of the paired bootstrap's resamples."""


@dataclass
class Choice:
    """What was written and why.

    Attributes:
        written: one of :data:`CANDIDATES`.
        figures: pooled validation mIoU of every candidate scored, and of the forest.
        confidence: per network alone, how sure validation is that it beats the average.
        matrices: the written candidate's confusion matrix per validated feature.
        low, high: the bootstrap interval of its mIoU (``interval.py``).
        few: classes validated by fewer than ``interval.FEW_FEATURES`` features.
        training_fit: the written model's mIoU on its own training pixels, once the upper
            end was raised to it (:meth:`allow_for_training`).
        validated: the validation figure as the runs gave it, once the estimate was raised
            for the labels they did not train on (:meth:`allow_for_training`).
        training_pixels: the written model's mIoU on its own training pixels, once checked.
        overruled: the network alone that validation found surely better, not written
            because validation was rough (``few``).
    """

    written: str
    figures: dict[str, float]
    matrices: np.ndarray
    low: float
    high: float
    few: list[int] = field(default_factory=list)
    confidence: dict[str, float] = field(default_factory=dict)
    training_fit: float | None = None
    validated: float | None = None
    training_pixels: float | None = None
    overruled: str | None = None

    def allow_for_training(self, estimate: float, fit: float, share: float | None) -> float:
        """The estimate and the interval, allowing for what each validated run did not see.

        Args:
            estimate: the validation estimate of what the file holds.
            fit: the written model's mIoU on its own training pixels (``coverage.py``).
            share: the share of the features each validated run trained on, when the model
                file was trained again on all of them (final fit); None when the file holds a
                validated network.

        Where the file trained on more features than any validated run, or a class has few
        validated features, validation is on the low side: on the held-out bench it fell 0.2
        below the map on wetlands (two or three polygons a class) and 0.11 below on buildings
        (3-fold, five or more a class), outside the bootstrap interval both times. The map on
        polygons it never saw is rarely better than on those it trained on, so the upper end
        rises to ``fit``. Where every class has enough validated features for the figure to be
        taken at its word, the estimate itself allows for the larger training set
        (``interval.share_corrected``); with fewer, the figure swings more with the choice of
        polygons (both ways) than the training share moves it, and is left as it is.
        """
        self.training_pixels = fit
        if math.isnan(self.high):
            return estimate
        if (self.few or share is not None) and fit > self.high:
            self.high, self.training_fit = fit, fit
        if share is None or self.few:
            return estimate
        corrected = share_corrected(estimate, fit, share)
        if corrected > estimate:  # within [estimate, fit], so inside the interval
            self.validated = estimate
        return corrected

    @property
    def miou(self) -> float:
        return self.figures[self.written]

    def summary(self, estimate: float) -> str:
        """'your labels: forest X, U-Net Y, ...; written: Z' for the log and the report."""
        scored = ", ".join(f"{name} {value:.3f}" for name, value in self.figures.items())
        interval = (f" (90 % interval {self.low:.3f} to {self.high:.3f}, resampling whole "
                    "features)" if not math.isnan(self.low) else "")
        why = ("the average unless a network alone validates better with confidence"
               if AVERAGE in self.figures else "the only network scored")
        return (f"Validation on your labels (polygons each run never saw): {scored}. The model "
                f"file holds the {self.written} ({why}): estimated mIoU "
                f"{estimate:.3f}{interval}.")


    def metrics(self, names: list[str]) -> dict:
        """What the model file's metadata says of the choice and the interval."""
        return {"written": self.written,
                "validation_candidates": {k: round(v, 5) for k, v in self.figures.items()},
                "val_miou_interval": [round(self.low, 5), round(self.high, 5)],
                "interval_level": LEVEL,
                "choice_confidence": {k: round(v, 3) for k, v in self.confidence.items()},
                "training_pixels_miou": None if self.training_pixels is None
                else round(self.training_pixels, 5),
                "validated_miou": None if self.validated is None else round(self.validated, 5),
                "few_validated_features": [names[c] for c in self.few]}

    def notes(self, names: list[str], totals: np.ndarray, estimate: float) -> list[str]:
        """:meth:`summary`, then what the interval rests on: classes with few validated
        features, and classes with labels that no held-out feature validated."""
        notes = [self.summary(estimate)]
        if self.overruled:
            notes.append(f"Validation found the {self.overruled} alone better, but it rests on "
                         f"fewer than {FEW_FEATURES} features of some classes, where such a "
                         f"finding is often wrong: the model file holds the {self.written}.")
        if self.few:
            notes.append(f"The interval rests on fewer than {FEW_FEATURES} validated features "
                         f"of {', '.join(repr(names[c]) for c in self.few)}: take the figure "
                         "as rough, and digitise more separate polygons of these classes.")
        if self.training_fit is not None or self.validated is not None:
            notes.append("Each validated run trained on fewer features than the model file, "
                         "so validation is on the low side"
                         + (f": the estimate allows for the labels the runs did not see "
                            f"({self.validated:.3f} as validated, weighed with the fit on "
                            "training pixels by the share of features each run trained on)"
                            if self.validated is not None else "")
                         + (f"; the interval's upper end is the model's mIoU on its own "
                            f"training pixels ({self.training_fit:.3f})"
                            if self.training_fit is not None else "") + ".")
        skipped = [names[c] for c in range(len(names))
                   if totals[c] > 0 and not self.matrices[:, c, :].sum()]
        if skipped:
            notes.append(f"Not validated (no held-out feature scored): "
                         f"{', '.join(repr(n) for n in skipped)}; the figure says nothing of "
                         "them.")
        return notes


def _at_epoch(curves: list[np.ndarray], epoch: int) -> np.ndarray | None:
    """A run's per-feature matrices at ``epoch`` (its last epoch if it stopped before)."""
    if not curves:
        return None
    return curves[min(epoch, len(curves)) - 1]


def choose(runs: list, epoch: int, seed: int, networks_only: bool = False
           ) -> Choice | None:
    """The candidate to write, from the validated runs (``validated.Validated``) at the chosen
    ``epoch``; None when the runs hold no per-feature scores (a run restored from an older
    checkpoint). ``networks_only``: the U-Net alone is a candidate (fine-tuning a model)."""
    pooled: dict[str, np.ndarray] = {}
    parts: dict[str, list] = {name: [] for name in (NETWORK, AVERAGE, FOREST_NETWORK, FOREST)}
    for run in runs:
        loop = run.loop
        parts[NETWORK].append(_at_epoch(loop.feature_matrices, epoch))
        parts[AVERAGE].append(_at_epoch(loop.blend_matrices, epoch))
        parts[FOREST_NETWORK].append(run.forest_network_matrices)
        parts[FOREST].append(run.forest)
    for name, found in parts.items():
        if found and all(m is not None for m in found):
            pooled[name] = np.concatenate(found)
    if NETWORK not in pooled:
        return None
    figures = {name: float(miou_of(pooled[name].sum(0))) for name in pooled}
    allowed = [n for n in CANDIDATES if n in pooled and (n == NETWORK or not networks_only)]
    default = AVERAGE if AVERAGE in allowed else allowed[0]
    confidence = {n: chance_better(pooled[n], pooled[default], seed)
                  for n in allowed if n != default}
    sure = [n for n in confidence if confidence[n] >= SURE and figures[n] > figures[default]]
    few = few_classes(pooled[default])
    written = max(sure, key=lambda n: figures[n]) if sure and not few else default
    low, high = bootstrap_interval(pooled[written], seed)
    return Choice(written, figures, pooled[written], low, high, few, confidence,
                  overruled=max(sure, key=lambda n: figures[n]) if sure and few else None)


def written_candidate(choice: "Choice | None") -> str:
    """What the model file holds: the chosen candidate, or the U-Net when nothing was chosen
    (a run cancelled before choosing)."""
    return choice.written if choice is not None else NETWORK


def curve_estimate(runs: list, epoch: int) -> float:
    """The averaged network's mIoU at ``epoch`` and the epochs either side (one held-out
    share: the chosen epoch was picked on a noisy curve; ``cross_validation.smoothed_val_miou``)."""
    curves = [r.loop.blend_matrices for r in runs]
    last = min(len(c) for c in curves)
    values = [float(miou_of(np.concatenate([c[e - 1] for c in curves]).sum(0)))
              for e in (epoch - 1, epoch, epoch + 1) if 1 <= e <= last]
    return float(np.mean(values)) if values else math.nan
