"""The training settings' one owner: their ranges, which of them shape training (a checkpoint's
key), and the stopping rules a loop is given (``backend/training/config.py``, ``stopping.py``)."""
from __future__ import annotations

import dataclasses

import pytest

from landcoverunet.backend.core.errors import UserError
from landcoverunet.backend.training.config import (RANGES, TrainingConfig, check_config,
                                                   config_default, shaping_settings)
from landcoverunet.backend.training.stopping import (early_stopping, final_fit_length,
                                                     fixed_length)

CONFIG = TrainingConfig(images=["image.tif"], masks=["mask.tif"], output_model="model.keras")


def test_the_defaults_are_within_their_ranges():
    check_config(CONFIG)
    for name, (low, high) in RANGES.items():
        assert low <= config_default(name) and (high is None or config_default(name) <= high)


@pytest.mark.parametrize("name,value", [("epochs", 0), ("tile_size", 8), ("batch_size", 2000),
                                        ("learning_rate", 0.0), ("validation_fraction", 0.9),
                                        ("patience", 0), ("seed", -1), ("time_limit", -5.0),
                                        ("steps_per_epoch", -1), ("workers", 0)])
def test_a_setting_out_of_its_range_is_refused_by_name(name, value):
    with pytest.raises(UserError, match=f"'{name}' must be"):
        check_config(dataclasses.replace(CONFIG, **{name: value}))


def test_the_settings_that_shape_training_leave_out_outputs_and_conveniences():
    shaping = set(shaping_settings())
    assert {"images", "masks", "epochs", "seed", "time_limit", "teacher"} <= shaping
    assert not shaping & {"output_model", "output_report", "tensorboard_dir", "workers",
                          "device", "resume", "ensemble"}


def test_each_kind_of_run_stops_by_its_own_rule():
    config = dataclasses.replace(CONFIG, epochs=30, patience=5, time_limit=10.0)
    first = early_stopping(config, 0.3)
    assert (first.epochs, first.validates, first.replays, first.deadline_share) == \
        (30, True, False, 0.3)
    assert not first.stalled(4) and first.stalled(5) and first.chooses
    assert early_stopping(dataclasses.replace(config, time_limit=0.0), 0.3).deadline_share == 0
    later_fold = fixed_length(12)
    assert (later_fold.epochs, later_fold.validates, later_fold.replays) == (12, True, True)
    assert not later_fold.stalled(100) and later_fold.deadline_share == 0
    assert not later_fold.chooses and not final_fit_length(12).chooses
    final = final_fit_length(12)
    assert (final.epochs, final.validates, final.replays) == (12, False, True)
