"""Training settings: the defaults the algorithm shows, the run's result, and the constants of
the schedule and of validation (one owner for each; the Train U-Net algorithm reads its defaults
here through :func:`config_default`)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any

from ..core.choices import MAX_TILE_SIZE, MIN_TILE_SIZE
from ..core.errors import UserError
from ..model.metadata import ModelMetadata
from ..core.input_warnings import FEW_PIXELS  # noqa: F401  (quoted by the help texts)

PIXELS_PER_EPOCH = 2 ** 21
"""Pixels seen per epoch when the number of steps is automatic (about 128 windows of 128^2)."""
MIN_STEPS = 4
VALIDATED_SHARE = 0.45
"""Share of the time limit the validated run may use (the final fit repeats at most its
epochs, without validation). With K cross-validation folds, each fold may use 2 / (K + 1) of
this share, so the folds and the final fit still end within about 90 % of the limit."""
CROSS_VALIDATION_BELOW = 60
"""With fewer digitised features than this, validation is cross-validation of :data:`FOLDS`
folds by whole features: one held-out share would be a handful of polygons, whose score swings
by more than 0.1 from one split to the next (docs/benchmarks.md)."""
FOLDS = 3
"""Folds of that cross-validation: each costs a validated run, and each trains on two thirds."""
NEAR_BEST = 0.005
"""Validation mIoUs this close to the best are a tie, and the latest such epoch is chosen
(``cross_validation.mark_epoch``)."""
REPORT_SAMPLES = 4
LABEL_SMOOTHING = 0.1
"""Label smoothing of the cross-entropy losses: a few polygons should not make the network sure."""
WEIGHT_DECAY = 1e-2
"""AdamW's decoupled weight decay."""
EMA_EPOCHS = 1.0
"""The weights validated and kept are an exponential moving average of the training weights
over about this many epochs (at least 10 steps): with few labels the raw weights swing from
step to step, and their average generalises better and more steadily (as SWA does)."""


SHAPES = {"shapes_training": True}
"""Field metadata of the settings that change what is trained: a checkpoint is resumed only
for the same values of these (``checkpoint.checkpoint_key``)."""


@dataclass
class TrainingConfig:
    """Everything a training run needs; the defaults are the plugin's defaults.

    Attributes:
        images: training images (same bands).
        masks: one mask per image, from buildmasks, on the image's grid.
        output_model: the ``.keras`` file to write.
        bands: 1-based bands to use; None for all.
        tile_size: edge of training windows (reduced for small scenes, with a message).
        model_size: "small", "medium" or "large" (see ``models.presets.PRESETS``).
        epochs: maximum number of epochs.
        batch_size: windows per step.
        learning_rate: peak learning rate (1 epoch warm-up, then cosine decay).
        loss: one of ``models.losses.LOSSES``.
        augment: flips, rotations, radiometric jitter.
        validation_fraction: share of labelled pixels held out as validation blocks.
        patience: epochs without a better validation mIoU before stopping.
        seed: makes sampling, the split and the initial weights repeatable.
        init_model: a model file to start from (fine-tune or resume).
        device: "auto", "cpu" or "gpu".
        steps_per_epoch: batches per epoch; 0 for about :data:`PIXELS_PER_EPOCH` pixels.
        output_report: the HTML report (optional).
        tensorboard_dir: a TensorBoard log folder (optional).
        workers: threads preparing batches.
        final_fit: after the validated run has chosen the number of epochs, train again on
            all features (held-out ones included) for that many epochs and write that model;
            the validation figures remain those of the validated run.
        teacher: fit a per-pixel random forest on the training labels and train on its soft
            pseudo-labels of unlabelled pixels too (``training.teacher``).
        time_limit: minutes training may take (0: no limit); the validated run stops after
            :data:`VALIDATED_SHARE` of it, so the final fit fits in the rest.
        ensemble: the model file averages the final fit's network and the validated one
            (``models.ensemble``); classifying then takes twice as long.
        resume: go on from the checkpoint a killed or cancelled run on the same model left
            (``backend.training.checkpoint``); without it, a stale checkpoint is removed.
    """

    images: list[str] = field(metadata=SHAPES)
    masks: list[str] = field(metadata=SHAPES)
    output_model: str
    bands: list[int] | None = field(default=None, metadata=SHAPES)
    tile_size: int = field(default=64, metadata=SHAPES)
    model_size: str = field(default="small", metadata=SHAPES)
    epochs: int = field(default=50, metadata=SHAPES)
    batch_size: int = field(default=8, metadata=SHAPES)
    learning_rate: float = field(default=2e-3, metadata=SHAPES)
    loss: str = field(default="weighted_cross_entropy", metadata=SHAPES)
    augment: bool = field(default=True, metadata=SHAPES)
    validation_fraction: float = field(default=0.2, metadata=SHAPES)
    patience: int = field(default=10, metadata=SHAPES)
    seed: int = field(default=42, metadata=SHAPES)
    init_model: str | None = field(default=None, metadata=SHAPES)
    device: str = "auto"
    steps_per_epoch: int = field(default=0, metadata=SHAPES)
    output_report: str | None = None
    tensorboard_dir: str | None = None
    workers: int = 2
    final_fit: bool = field(default=True, metadata=SHAPES)
    teacher: bool = field(default=True, metadata=SHAPES)
    time_limit: float = field(default=10.0, metadata=SHAPES)
    ensemble: bool = False
    resume: bool = False




@dataclass
class TrainingResult:
    """What a run produced."""

    model_path: str
    csv_path: str
    report_path: str | None
    best_val_miou: float
    val_miou: float
    """The validation estimate: the mean mIoU of the chosen epoch and its neighbours."""
    best_epoch: int
    epochs_run: int
    cancelled: bool
    stopped_early: bool
    history: list[dict]
    metadata: ModelMetadata
    messages: list[str] = field(default_factory=list)
    interval: tuple[float, float] | None = None
    """The 90 % bootstrap interval of the validation mIoU (``interval.py``), when scored."""
    forest_val_miou: float | None = None
    """The teacher forest's mIoU on the same held-out features (``choice.py``)."""
    written: str = "U-Net"
    """What the model file holds (``choice.CANDIDATES``)."""


RANGES: dict[str, tuple[float, float | None]] = {
    "tile_size": (MIN_TILE_SIZE, MAX_TILE_SIZE), "epochs": (1, 10000), "batch_size": (1, 1024),
    "learning_rate": (1e-6, 1.0), "validation_fraction": (0.05, 0.5), "patience": (1, 10000),
    "seed": (0, None), "time_limit": (0.0, None), "steps_per_epoch": (0, 100000),
    "workers": (1, 64)}
"""The values each numeric setting may take (lowest, highest or None): the dialog's limits,
and what :func:`check_config` refuses beyond them for any caller."""


def check_config(config: TrainingConfig) -> None:
    """Refuses settings outside :data:`RANGES`, naming the setting.

    Raises:
        UserError: for a value out of its range.
    """
    for name, (low, high) in RANGES.items():
        value = getattr(config, name)
        if not (low <= value and (high is None or value <= high)):
            allowed = f"from {low:g} to {high:g}" if high is not None else f"at least {low:g}"
            raise UserError(f"The training setting '{name}' must be {allowed}; got {value}.")


def shaping_settings() -> tuple[str, ...]:
    """The names of the settings that change what is trained (:data:`SHAPES`)."""
    return tuple(f.name for f in fields(TrainingConfig) if f.metadata.get("shapes_training"))


def config_default(name: str) -> Any:
    """The default of a :class:`TrainingConfig` setting (the algorithm shows the same)."""
    return TrainingConfig.__dataclass_fields__[name].default


CANCELLED = ".cancelled"
"""Inserted before the extension of a cancelled run's files (``model.cancelled.keras``): a
cancelled run never replaces a finished one's files, it writes beside them."""


def cancelled_name(path: str) -> str:
    """Where a cancelled run writes what it was asked to write at ``path``."""
    stem, ext = os.path.splitext(path)
    return stem + CANCELLED + ext


def model_companions(model_path: str) -> list[str]:
    """The other files a run that writes ``model_path`` may write: its epoch log, and a
    cancelled run's model and log (the algorithm checks that none of them is an input)."""
    return [csv_path_for(model_path), cancelled_name(model_path),
            csv_path_for(cancelled_name(model_path))]


def csv_path_for(model_path: str) -> str:
    """The CSV epoch log beside a model: ``<model stem>_epochs.csv``."""
    stem = model_path[:-len(".keras")] if model_path.lower().endswith(".keras") else model_path
    return stem + "_epochs.csv"
