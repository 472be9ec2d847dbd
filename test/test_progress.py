"""Time left beside the progress bar (``backend/core/progress.py``, ``algorithms/base.py``)."""
from __future__ import annotations

from landcoverunet.backend.core.progress import TimeLeft, words_for


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_time_left_is_said_once_settled_then_once_a_minute_when_it_changes():
    clock = Clock()
    left = TimeLeft(clock)
    clock.now += 5
    assert left.update(0.5) is None           # too early: the first seconds say nothing
    clock.now += 10                           # 15 s for 1 %: not settled yet
    assert left.update(0.01) is None
    clock.now += 45                           # 60 s for 10 %: 9 minutes to go
    assert left.update(0.10) == "About 9 min left"
    clock.now += 30
    assert left.update(0.15) is None          # said less than a minute ago
    clock.now += 30                           # 120 s for 20 %: 8 minutes
    assert left.update(0.20) == "About 8 min left"
    clock.now += 60                           # 180 s for 30 %: still 7 minutes
    assert left.update(0.30) == "About 7 min left"
    clock.now += 60
    assert left.update(0.364) is None         # 240 s for 36.4 %: 7 minutes again, not repeated
    assert left.update(1.0) is None           # done: nothing left to say


def test_words_for_seconds_minutes_and_hours():
    assert words_for(20) == "Under a minute left"
    assert words_for(150) == "About 2 min left"
    assert words_for(3900) == "About 1 h 05 min left"


def test_feedback_shows_time_left_beside_the_bar(plugin):
    from qgis.core import QgsProcessingFeedback

    from landcoverunet.algorithms.base import FeedbackProgress

    class Recording(QgsProcessingFeedback):
        def __init__(self) -> None:
            super().__init__()
            self.texts: list[str] = []

        def setProgressText(self, text: str) -> None:  # noqa: N802
            self.texts.append(text)

    feedback, clock = Recording(), Clock()
    progress = FeedbackProgress(feedback)
    progress.time_left = TimeLeft(clock)
    clock.now += 120
    progress.set_fraction(0.5)
    assert feedback.progress() == 50.0 and feedback.texts == ["About 2 min left"]
