import math

import pytest

from lenet_mnist.summarize import epochs_to, mean_ci, speed


def test_confidence_interval_uses_students_t():
    # t(0.975, 2 degrees of freedom) = 4.303 in every statistics table; sd of 1, 2, 3 is 1.
    stat = mean_ci([1.0, 2.0, 3.0])
    assert stat["mean"] == 2.0 and stat["n"] == 3
    assert stat["ci95_high"] - stat["mean"] == pytest.approx(4.303 / math.sqrt(3), abs=1e-3)
    assert stat["mean"] - stat["ci95_low"] == pytest.approx(stat["ci95_high"] - stat["mean"])


def test_confidence_interval_narrows_with_more_seeds():
    wide, narrow = mean_ci([0.98, 0.99]), mean_ci([0.98, 0.99] * 5)
    assert narrow["ci95_high"] - narrow["ci95_low"] < (wide["ci95_high"] - wide["ci95_low"]) / 5


def test_one_seed_has_no_interval():
    assert mean_ci([0.5]) == {"mean": 0.5, "ci95_low": None, "ci95_high": None, "n": 1}


def test_identical_seeds_give_a_zero_width_interval():
    stat = mean_ci([0.9, 0.9, 0.9])
    assert stat["ci95_low"] == pytest.approx(0.9) and stat["ci95_high"] == pytest.approx(0.9)


def test_epochs_to_a_validation_accuracy(tmp_path):
    history = tmp_path / "h.csv"
    history.write_text("epoch,train_loss,train_accuracy,val_loss,val_accuracy\n"
                       "1,1,0.5,1,0.90\n2,1,0.5,1,0.951\n3,1,0.5,1,0.97\n")
    assert epochs_to(history, 0.95) == 2 and epochs_to(history, 0.98) is None


def test_speed_gives_a_median_only_when_every_seed_got_there():
    assert speed([3, 5, 4]) == {"reached": 3, "of": 3, "median": 4}
    assert speed([3, None, 4]) == {"reached": 2, "of": 3, "median": None}
