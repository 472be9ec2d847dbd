"""The final fit and the network the model file holds.

After validation has chosen the epoch and the candidate (``choice.py``), the U-Net is trained
again on every feature, held-out ones included, for the chosen number of epochs (or, when the
forest network alone validated best, only it is distilled again from a teacher on every
feature). :func:`network_to_write` then puts together what the file holds: the final U-Net
alone, or averaged with the forest network distilled from the final teacher (``choice.AVERAGE``),
or with the validated network (``config.ensemble``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

from ..core.errors import Cancelled
from ..core.progress import Progress, SubProgress
from .checkpoint import Checkpoint
from .choice import AVERAGE, FOREST_NETWORK
from .distribute import device_scope
from .loop import EpochLoop, class_weights
from .plan import TrainingPlan, make_model
from .sampling import WindowSampler
from .stopping import final_fit_length
from .teaching import teach
from .validation import Validation


@dataclass
class FinalFit:
    """The network the final fit made (or the validated one, when it did not run)."""

    model: Any
    fitted: bool
    """Whether ``model`` was trained again on every feature."""
    cancelled: bool = False
    """The final fit was cancelled: ``model`` is the validated network."""
    readers: list = field(default_factory=list)
    """The final fit's scenes with the final teacher's pseudo-labels (to distil it)."""
    scenes: tuple[list, list] | None = None
    """The final fit's readers and label summaries, which the coverage check reuses."""
    architecture: dict = field(default_factory=dict)
    """The plan's architecture with what the final fit adds (``depth`` 0 for a forest
    network alone, ``members``, ``written``)."""


def final_fit(plan: TrainingPlan, validation: Validation, written: str,
              checkpoint: Checkpoint, csv_path: str, progress: Progress) -> FinalFit:
    """Trains again on every feature for the chosen number of epochs (when asked and not
    cancelled); else keeps the validated network. When the forest network alone validated
    best, only it is fitted again."""
    runs, architecture = validation.runs, dict(plan.architecture)
    if not plan.config.final_fit or validation.curves.cancelled:
        if written == FOREST_NETWORK and runs[0].forest_network is not None:
            return FinalFit(runs[0].forest_network, False, architecture=architecture)
        return FinalFit(validation.validated_model, False, architecture=architecture)
    if written == FOREST_NETWORK:
        return _final_forest_network(plan, validation, written, progress)
    epochs = validation.epoch
    progress.info(f"Final fit: training again on all {len(plan.features)} features, "
                  f"held-out ones included, for the {epochs} epochs validation chose. The "
                  "validation figures are those of the run without the held-out features.")
    loop = scenes = None
    readers: list = []
    try:  # a cancel during the final fit keeps the validated model
        loop, model, scenes, readers = _train_again(plan, validation, epochs, checkpoint,
                                                    csv_path, progress)
    except Cancelled:
        pass
    if loop is not None and loop.best_weights is not None:
        model.set_weights(loop.best_weights)
        return FinalFit(model, True, readers=readers, scenes=scenes,
                        architecture=architecture)
    progress.warn("The final fit was cancelled: the model written is the validated one, "
                  "trained without the held-out features"
                  + (" of the first fold." if plan.folds > 1 else "."))
    return FinalFit(validation.validated_model, False, cancelled=progress.cancelled(),
                    scenes=scenes, architecture=architecture)


def _train_again(plan: TrainingPlan, validation: Validation, epochs: int,
                 checkpoint: Checkpoint, csv_path: str, progress: Progress) -> tuple:
    """(the final loop, its network, the scenes, the teacher's readers): the U-Net trained
    on every label, going on from the checkpoint's final stage when there is one."""
    from .data import TrainingBatches

    config, inputs, keras = plan.config, plan.inputs, plan.keras
    # the scenes are read again, with every label
    everything, all_scenes = plan.open_scenes(bar=SubProgress(progress, 0.55, 0.56))
    saved = checkpoint.stage("final")
    if saved is not None:
        progress.info(f"Final fit: resuming after epoch {saved.fields['epoch']}.")
    readers: list = []
    if config.teacher and (saved is None or saved.fields["epoch"] < epochs):
        teach(everything, plan.classes, config.seed, progress, max(plan.tile))
        readers = everything
    all_data = TrainingBatches(everything, WindowSampler(all_scenes, plan.tile),
                               plan.batch_size, config.augment, config.seed)
    keras.utils.set_random_seed(config.seed)
    with device_scope(keras, plan.device):
        model = make_model(plan)
        loop = EpochLoop(keras, model, config, plan.steps, all_data, None, inputs,
                         class_weights(sum(s.totals for s in all_scenes)),
                         SubProgress(progress, 0.56, 0.95), progress, final_fit_length(epochs),
                         plan=validation.runs[0].loop.plan.planned, csv_path=csv_path,
                         checkpoint=partial(checkpoint.save_loop, "final"))
        if saved is not None:
            loop.restore(saved)
        loop.run()
    return loop, model, (everything, all_scenes), readers


def _final_forest_network(plan: TrainingPlan, validation: Validation, written: str,
                          progress: Progress) -> FinalFit:
    """The forest network fitted again from a teacher on every feature (a model file that
    holds the forest network alone)."""
    from .forest_student import distil_forest

    progress.info(f"Final fit: the forest network validated best, so only it is fitted "
                  f"again, from a teacher on all {len(plan.features)} features; no U-Net "
                  "is trained again.")
    everything, scenes = plan.open_scenes(bar=SubProgress(progress, 0.55, 0.6))
    teach(everything, plan.classes, plan.config.seed, progress, max(plan.tile))
    network = distil_forest(everything, plan.classes, plan.config.seed, progress)
    return FinalFit(network if network is not None else validation.runs[0].forest_network,
                    True, scenes=(everything, scenes),
                    architecture=plan.architecture | {"depth": 0, "written": written})


def network_to_write(plan: TrainingPlan, validation: Validation, final: FinalFit,
                     written: str, progress: Progress) -> tuple[Any, dict]:
    """(the model file's network, its architecture): with the average chosen (``choice.py``),
    the final U-Net and the forest network distilled from the final teacher, averaged. With
    ``config.ensemble`` and a final fit, the final network and the validated one (trained
    without the held-out features, from another start), averaged: two networks' mean
    probabilities are steadier on polygons neither saw."""
    from ...models.ensemble import average_models

    if written == AVERAGE:
        from .forest_student import distil_forest

        forest_network = (distil_forest(final.readers, plan.classes, plan.config.seed,
                                        progress)
                          if final.fitted and final.readers else
                          validation.runs[0].forest_network)
        if forest_network is not None:
            progress.info("The model file averages the U-Net and the forest network "
                          "(neither alone validated better with confidence).")
            return (average_models([final.model, forest_network]),
                    final.architecture | {"members": 2, "written": AVERAGE})
    if not (plan.config.ensemble and final.fitted and plan.init_metadata is None):
        return final.model, final.architecture
    progress.info("The model file averages two networks: the final fit and the validated "
                  "run's best epoch (an ensemble; classifying takes twice as long).")
    return (average_models([final.model, validation.validated_model]),
            final.architecture | {"members": 2})
