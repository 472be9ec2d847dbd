"""How long an epoch loop trains, and what may end it sooner: one small value per kind of run.

A loop is given a :class:`Length` instead of mode flags. Three kinds exist:

- :func:`early_stopping`: the validated run that chooses the epoch. It validates every epoch,
  stops after ``patience`` epochs without a better validation mIoU, and stops once it has used
  its share of the time limit (its learning-rate schedule shortened to end there).
- :func:`fixed_length`: the later cross-validation folds. They validate every epoch but train
  exactly as many epochs as the first fold did, with its learning rates.
- :func:`final_fit_length`: the final fit. It trains the chosen number of epochs with the
  validated run's learning rates and does not validate; its last weights are kept.
"""
from __future__ import annotations

from dataclasses import dataclass

from .config import TrainingConfig


@dataclass(frozen=True)
class Length:
    """How many epochs a loop plans, and what may end it sooner."""

    epochs: int
    """The last epoch planned (a deadline may bring it forward)."""
    validates: bool = True
    """Scores every epoch on the held-out features and keeps the chosen epoch's weights; else
    keeps the last weights."""
    patience: int | None = None
    """Epochs without a better validation mIoU that stop the loop; None: no early stop."""
    deadline_share: float = 0.0
    """Share of the time limit the loop may use (0: no deadline)."""
    replays: bool = False
    """Follows the epoch plan of the run it repeats (the same learning rates)."""

    @property
    def chooses(self) -> bool:
        """The run that chooses the epoch (validates, repeats no other): the one whose curves
        TensorBoard draws live."""
        return self.validates and not self.replays

    def stalled(self, wait: int) -> bool:
        """Whether ``wait`` epochs without a gain end the loop."""
        return self.patience is not None and wait >= self.patience


def early_stopping(config: TrainingConfig, deadline_share: float) -> Length:
    """The validated run that chooses the epoch (the first fold of a cross-validation)."""
    return Length(config.epochs, patience=config.patience,
                  deadline_share=deadline_share if config.time_limit > 0 else 0.0)


def fixed_length(epochs: int) -> Length:
    """A later fold: exactly the first fold's epochs, validated."""
    return Length(epochs, replays=True)


def final_fit_length(epochs: int) -> Length:
    """The final fit: the chosen epochs, not validated."""
    return Length(epochs, validates=False, replays=True)
