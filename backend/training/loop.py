"""The epoch loop: train steps, validation, logging, best weights, early stop, deadline, cancel.

An epoch is a fixed number of sampled pixels (not a pass over the scene), so the time an epoch
takes does not grow with the scene, and early stopping bounds the whole run. The weights
validated and kept are an exponential moving average of the training weights. Cancelling stops
after the current batch; the best weights so far are kept.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np

from ..core.progress import Progress
from .config import (EMA_EPOCHS, LABEL_SMOOTHING, REPORT_SAMPLES, WEIGHT_DECAY, TrainingConfig,
                     csv_path_for)
from .checkpoint import Stage
from .epoch_log import write_epoch_csv
from .cross_validation import mark_epoch, top_index
from .inputs import Inputs
from .schedule import EpochPlan, ema_momentum, learning_rate, warmup_steps
from .stopping import Length
from .report_html import pick_samples
from .validation_scores import confusion_matrix, feature_confusions, scores
from .calibration import HeldOutSample


def class_weights(pixels: np.ndarray, power: float = 0.5, limit: float = 20.0) -> list[float]:
    """Per-class loss weights ~ (1 / frequency) ** power, averaging 1 over the labelled pixels.

    The square root (rather than plain inverse frequency) balances rare classes without letting
    a class of a few dozen pixels dominate; windows are already drawn more often around rare
    classes.
    """
    pixels = np.asarray(pixels, dtype=np.float64)
    frequency = pixels / max(pixels.sum(), 1.0)
    with np.errstate(divide="ignore"):
        raw = np.where(frequency > 0, frequency ** -power, 0.0)
    raw = raw / max(float((raw * frequency).sum()), 1e-12)
    return [float(w) for w in np.clip(raw, 0.0, limit)]


def _load_average(model: Any) -> None:
    """Puts the optimizer's weight average into the model's weights, as copies.

    ``finalize_variable_values`` makes each weight share its average's buffer; under JAX the
    next jitted call (``predict_on_batch`` too) donates, so deletes, the weights' buffers, and
    the average would go with them. Writing the values back breaks that sharing.
    """
    model.optimizer.finalize_variable_values(model.trainable_variables)
    model.set_weights(model.get_weights())


class EpochLoop:
    """The epoch loop: train steps, validation, logging, best weights, early stop, cancel."""

    def __init__(self, keras, model, config: TrainingConfig, steps: int, data, val_set,
                 inputs: Inputs, weights: list[float], bar: Progress, log: Progress,
                 length: Length, name: str = "", plan: list[int] | None = None,
                 csv_path: str | None = None,
                 checkpoint: Callable[["EpochLoop"], None] | None = None,
                 companion: np.ndarray | None = None) -> None:
        """``length``: how many epochs, and what may end the loop sooner (``stopping.py``).
        ``plan``: the epoch plan of the run this one repeats (``EpochPlan.planned``), so that
        it sees the same learning rates. ``name`` prefixes its log lines (a fold).
        ``csv_path`` is where the epoch log is written while training (the run's hidden
        temporary name; by default beside the model). ``checkpoint`` is called after every
        whole epoch (``checkpoint.py``). ``companion``: the forest network's probabilities on
        the validation windows, averaged with this network's to score the average."""
        self.keras, self.model, self.config, self.steps = keras, model, config, steps
        self.data, self.val_set, self.inputs, self.bar, self.log = data, val_set, inputs, bar, log
        self.classes = len(inputs.class_map)
        self.length, self.name, self.checkpoint = length, name, checkpoint
        self.plan = EpochPlan(config.epochs, plan if length.replays else None)
        self._compile(weights)
        self.csv_path = csv_path or csv_path_for(config.output_model)
        self.history: list[dict] = []
        self.best_record: dict = {}
        self.top = -1.0
        """The best validation mIoU so far (the chosen epoch's may be a little lower)."""
        self.best_weights: list | None = None
        self.best_confusion = np.zeros((self.classes, self.classes), np.int64)
        self.best_predictions: np.ndarray | None = None
        self.confusions: list[np.ndarray] = []
        """Per epoch, the confusion matrix of the held-out labels (cross-validation pools them)."""
        self.companion = companion
        self.feature_matrices: list[np.ndarray] = []
        """Per epoch, one confusion matrix per validated feature (``scores.feature_confusions``)."""
        self.blend_matrices: list[np.ndarray] = []
        """The same for the mean of this network's and the companion's probabilities."""
        self.held_sample = HeldOutSample.of(val_set.labels, config.seed) \
            if val_set is not None else None
        self.sample_probabilities: list[np.ndarray] = []
        """Per epoch, this network's probabilities on ``held_sample`` (``calibration.py``)."""
        self.sample_companion = self.held_sample.take(0, companion).astype(np.float16) \
            if companion is not None and self.held_sample is not None else None
        self.cancelled = self.stopped_early = self.out_of_time = False
        self.epoch = self.wait = 0
        """The last whole epoch trained, and the epochs since the last gain (patience)."""
        self.epoch_seconds: list[float] = []
        self.last = length.epochs
        """The last epoch planned (the deadline may bring it forward)."""
        # the validated run may use this share of the time limit; the final fit repeats at
        # most its epochs, so the whole training stays within the limit
        self.deadline = (time.time() + length.deadline_share * 60 * config.time_limit
                         if length.deadline_share else 0.0)
        self.samples = pick_samples(val_set.labels, REPORT_SAMPLES) if val_set else []
        self.board = self._tensorboard_log() if config.tensorboard_dir and length.chooses \
            else None

    def _compile(self, weights: list[float]) -> None:
        """The loss (with the teacher's pseudo-labels when the data carries them), the
        learning-rate warm-up, and AdamW with its weight average."""
        from ...models.losses import make_loss
        from ...models.metrics import MaskedMeanIoU

        config, steps, keras = self.config, self.steps, self.keras
        self.loss = make_loss(config.loss, weights, LABEL_SMOOTHING)
        if self.data is not None and any(r.soft is not None for r in self.data.readers):
            from ...models.losses import PseudoLabelLoss
            from .teacher import PSEUDO_WEIGHT

            self.loss = PseudoLabelLoss(self.loss, PSEUDO_WEIGHT)
        self.warmup = warmup_steps(steps, config.epochs)
        self.rate = learning_rate(0, steps * config.epochs, config.learning_rate, self.warmup)
        self.model.compile(optimizer=keras.optimizers.AdamW(
            learning_rate=self.rate, weight_decay=WEIGHT_DECAY, use_ema=EMA_EPOCHS > 0,
            ema_momentum=ema_momentum(steps)),
            loss=self.loss, metrics=[MaskedMeanIoU(self.classes)])

    def _tensorboard_log(self):
        """The TensorBoard log of the run that chooses the epoch, when TensorFlow can write it."""
        from .report_html import TENSORBOARD_NEEDS_TENSORFLOW, TensorBoardLog, tensorboard_usable

        if tensorboard_usable():
            return TensorBoardLog(self.config.tensorboard_dir, self.keras.backend.backend())
        self.log.warn(TENSORBOARD_NEEDS_TENSORFLOW)
        return None

    def run(self) -> None:
        """Trains from the epoch after :attr:`epoch` (0, or where a restored state ended)."""
        while self.epoch < self.last:
            epoch = self.epoch + 1
            started = time.time()
            done, logs = self._train_epoch(epoch)
            if done == 0:
                break
            loss = float(logs.get("loss", math.nan))
            if not math.isfinite(loss):
                self.log.warn(f"Epoch {epoch}: the loss is not a number; training stops. Try "
                              "a lower learning rate.")
                break
            if not self.length.validates:
                self.history.append({"epoch": epoch, "loss": loss})
                self.log.info(f"Final fit, epoch {epoch}/{self.last}: loss {loss:.4f}, "
                              f"{time.time() - started:.1f} s")
                if self.cancelled:
                    break
                self._epoch_done(epoch)
                continue
            record = self._validate(epoch, loss, float(logs.get("miou", math.nan)), done,
                                    time.time() - started)
            # only a better mIoU resets the patience: a near-best epoch kept as a tie is a stall
            self.wait = 0 if record["improved"] else self.wait + 1
            self.history.append(record)
            self._log_epoch(record)
            if self.cancelled:
                break
            self._check_stop(epoch, time.time() - started)
            self._epoch_done(epoch)
            if self.stopped_early or self.out_of_time:
                break
        if self.board is not None:
            self.board.close()
        if not self.length.validates and not self.cancelled and len(self.history) == self.last:
            if self.model.optimizer.use_ema:
                _load_average(self.model)
            self.best_weights = self.model.get_weights()

    def _train_epoch(self, epoch: int) -> tuple[int, dict]:
        """(steps done, the last step's logs): one epoch's training steps, on the learning
        rates of the plan; a cancel stops after the current step."""
        from .data import prefetch
        from .distribute import train_step

        config, last = self.config, self.last
        total = self.plan.start_epoch(epoch) * self.steps
        self.model.reset_metrics()
        logs: dict = {}
        done = 0
        batches = prefetch(lambda step, e=epoch: self.data.batch(e, step), range(self.steps),
                           workers=config.workers, depth=max(2, 2 * config.workers))
        try:
            for x, y in batches:
                self.rate = learning_rate((epoch - 1) * self.steps + done, total,
                                          config.learning_rate, self.warmup)
                self.model.optimizer.learning_rate = self.rate
                logs = train_step(self.model, x, y)
                done += 1
                self.bar.set_fraction(((epoch - 1) * self.steps + done) / (last * self.steps))
                if self.bar.cancelled():
                    self.cancelled = True
                    break
        finally:
            batches.close()
        return done, logs

    def _check_stop(self, epoch: int, seconds: float) -> None:
        """After a validated epoch: stops early on a stall, or at the deadline (shortening the
        plan when the deadline will come before its last epoch)."""
        if self.length.stalled(self.wait):
            self.stopped_early = True
        if self.deadline and not self.stopped_early:
            self.epoch_seconds.append(seconds)
            if self._replan(epoch, self.epoch_seconds):
                self.last = self.plan.current
            if time.time() > self.deadline or (
                    self.last < self.config.epochs and epoch >= self.last):
                self.out_of_time = True

    def _epoch_done(self, epoch: int) -> None:
        """Counts a whole epoch and checkpoints the loop (a cancelled epoch is not counted)."""
        self.epoch = epoch
        if self.checkpoint is not None:
            self.checkpoint(self)

    @property
    def finished(self) -> bool:
        """Whether the loop ended by itself (not cancelled): nothing is left to train."""
        return not self.cancelled and (self.stopped_early or self.out_of_time
                                       or self.epoch >= self.last)

    def state(self) -> Stage:
        """Everything needed to go on after the last whole epoch, or to use a finished loop's
        results without running it again (``checkpoint.py``)."""
        optimizer = self.model.optimizer if self.model is not None else None
        fields = {"epoch": self.epoch, "wait": self.wait, "top": self.top, "last": self.last,
                  "epoch_seconds": self.epoch_seconds, "planned": self.plan.planned,
                  "current": self.plan.current, "history": self.history[:self.epoch],
                  "best_record": self.best_record, "stopped_early": self.stopped_early,
                  "out_of_time": self.out_of_time, "finished": self.finished,
                  "deadline_left": self.deadline - time.time() if self.deadline else 0.0}
        arrays = {"confusions": self.confusions[:self.epoch],
                  "feature_matrices": self.feature_matrices[:self.epoch],
                  "blend_matrices": self.blend_matrices[:self.epoch],
                  "sample_probabilities": self.sample_probabilities[:self.epoch],
                  "sample_companion": self.sample_companion,
                  "best_confusion": self.best_confusion,
                  "best_predictions": self.best_predictions, "best_weights": self.best_weights}
        if self.model is not None and (not self.length.validates or not fields["finished"]):
            arrays["weights"] = self.model.get_weights()
            arrays["optimizer"] = [np.asarray(self.keras.ops.convert_to_numpy(v))
                                   for v in optimizer.variables] if optimizer.built else []
        return Stage(fields, arrays)

    def restore(self, stage: Stage) -> None:
        """Puts the loop where :meth:`state` left it: :meth:`run` goes on from the next epoch
        (a finished loop has nothing left to run)."""
        fields, arrays = stage.fields, stage.arrays
        self.epoch, self.wait, self.top = fields["epoch"], fields["wait"], fields["top"]
        self.last, self.epoch_seconds = fields["last"], list(fields["epoch_seconds"])
        self.plan.planned, self.plan.current = list(fields["planned"]), fields["current"]
        self.history, self.best_record = list(fields["history"]), dict(fields["best_record"])
        self.stopped_early, self.out_of_time = fields["stopped_early"], fields["out_of_time"]
        if self.deadline:
            self.deadline = time.time() + fields["deadline_left"]
        self.confusions = list(arrays.get("confusions", []))
        self.feature_matrices = list(arrays.get("feature_matrices", []))
        self.blend_matrices = list(arrays.get("blend_matrices", []))
        self.sample_probabilities = list(arrays.get("sample_probabilities", []))
        self.sample_companion = arrays.get("sample_companion", self.sample_companion)
        if "best_confusion" in arrays:
            self.best_confusion = arrays["best_confusion"].astype(np.int64)
        self.best_predictions = arrays.get("best_predictions")
        self.best_weights = arrays.get("best_weights")
        if "weights" in arrays:
            self.model.set_weights(arrays["weights"])
        if arrays.get("optimizer"):
            optimizer = self.model.optimizer
            optimizer.build(self.model.trainable_variables)
            for variable, value in zip(optimizer.variables, arrays["optimizer"]):
                variable.assign(value)
        if self.history:
            self.write_csv()

    def _replan(self, epoch: int, epoch_seconds: list[float]) -> bool:
        """Shortens the plan when the deadline will come before its last epoch; says so."""
        if not self.plan.after_epoch(epoch, epoch_seconds, self.deadline - time.time()):
            return False
        self.log.info(f"{self.name}{'t' if self.name else 'T'}he time limit leaves about "
                      f"{self.plan.current} epochs in all: the learning rate now decays to its "
                      f"end at epoch {self.plan.current}.")
        return True

    def _validate(self, epoch: int, loss: float, miou: float, steps_done: int,
                  seconds: float) -> dict:
        """Scores (and possibly keeps) the averaged weights; training goes on from the raw ones."""
        optimizer = self.model.optimizer
        raw = self.model.get_weights() if optimizer.use_ema else None
        if raw is not None:
            _load_average(self.model)
        try:
            return self._score(epoch, loss, miou, steps_done, seconds)
        finally:
            if raw is not None:
                self.model.set_weights(raw)

    def _score(self, epoch: int, loss: float, miou: float, steps_done: int,
               seconds: float) -> dict:
        from .distribute import predict_batch

        val = self.val_set
        matrix = np.zeros((self.classes, self.classes), np.int64)
        predictions = np.zeros(val.labels.shape, np.uint8)
        blended = np.zeros(val.labels.shape, np.uint8) if self.companion is not None else None
        loss_sum = weight = 0.0
        batch = max(1, self.config.batch_size)
        sampled = []
        for i in range(0, len(val.labels), batch):
            probabilities = predict_batch(self.model, val.pixels[i:i + batch])
            sampled.append(self.held_sample.take(i, probabilities))
            labels = val.labels[i:i + batch]
            predicted = probabilities.argmax(axis=-1).astype(np.uint8)
            predictions[i:i + batch] = predicted
            if blended is not None:
                blended[i:i + batch] = (probabilities + self.companion[i:i + batch]).argmax(-1)
            matrix += confusion_matrix(labels, predicted, self.classes)
            labelled = float((labels > 0).sum())
            if labelled:
                loss_sum += float(self.keras.ops.convert_to_numpy(
                    self.loss(labels, probabilities))) * labelled
                weight += labelled
        self.sample_probabilities.append(np.concatenate(sampled).astype(np.float16))
        if val.features is not None:
            self.feature_matrices.append(feature_confusions(
                val.features, val.labels, predictions, val.feature_count, self.classes))
            if blended is not None:
                self.blend_matrices.append(feature_confusions(
                    val.features, val.labels, blended, val.feature_count, self.classes))
        result = scores(matrix)
        record = {"epoch": epoch, "loss": loss, "miou": miou,
                  "val_loss": loss_sum / weight if weight else math.nan,
                  "val_miou": result.miou, "val_accuracy": result.accuracy,
                  "learning_rate": self.rate,
                  "seconds": seconds + 0.0, "steps": steps_done,
                  "partial": steps_done < self.steps, "best": False, "improved": False,
                  "iou": [float(v) for v in result.iou], "val_weight": weight}
        per_feature = self.feature_matrices if val.features is not None else []
        best_at = top_index(self.history)  # per_feature holds this epoch too: one more
        self.top = mark_epoch(record, self.top, per_feature[-1] if per_feature else None,
                              per_feature[best_at] if per_feature and best_at is not None
                              else None)
        self.confusions.append(matrix)
        if record["best"]:
            self.best_record = record
            self.best_weights = self.model.get_weights()
            self.best_confusion = matrix
            self.best_predictions = predictions[self.samples].copy()
        self.write_csv(record)
        if self.board is not None:
            self._tensorboard(record, matrix, predictions)
        return record

    def _log_epoch(self, record: dict) -> None:
        names = self.inputs.class_map.names
        per_class = ", ".join(f"{n} {v:.2f}" for n, v in zip(names, record["iou"])
                              if not math.isnan(v))
        partial = " (cancelled mid-epoch)" if record["partial"] else ""
        best = "  * best" if record["best"] else ""
        self.log.info(f"{self.name}{'e' if self.name else 'E'}poch {record['epoch']}/"
                      f"{self.length.epochs}{partial}: loss "
                      f"{record['loss']:.4f}, val loss {record['val_loss']:.4f}, val mIoU "
                      f"{record['val_miou']:.3f} [{per_class}], {record['seconds']:.1f} s{best}")

    def write_csv(self, record: dict | None = None) -> None:
        """Writes the epoch log: the history so far, and ``record`` when given."""
        write_epoch_csv(self.csv_path, self.history + ([record] if record else []),
                        self.inputs.class_map.names)

    def _tensorboard(self, record: dict, matrix: np.ndarray, predictions: np.ndarray) -> None:
        from .report_html import (Sample, confusion_png, palette_array, png_to_array, rgb_channels_for,
                             sample_strip)

        names = self.inputs.class_map.names
        values = {"loss/train": record["loss"], "loss/validation": record["val_loss"],
                  "miou/train": record["miou"], "miou/validation": record["val_miou"],
                  "learning_rate": record["learning_rate"]}
        values.update({f"iou/{n}": v for n, v in zip(names, record["iou"])})
        self.board.scalars(record["epoch"], values)
        colours = [c.color for c in self.inputs.class_map.classes]
        channels, _ = rgb_channels_for(self.inputs.band_names)
        strips = [sample_strip(Sample(self.val_set.pixels[i], self.val_set.valid[i],
                                      self.val_set.labels[i], predictions[i]),
                               palette_array(colours), channels) for i in self.samples]
        self.board.images(record["epoch"], "validation tiles (image | label | prediction)",
                          strips)
        self.board.images(record["epoch"], "confusion matrix",
                          [png_to_array(confusion_png(matrix, names))])
