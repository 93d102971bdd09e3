import math

import pytest
from scipy import stats

from lenet_mnist.records import read_history
from lenet_mnist.summarize import (
    RESOLUTION,
    comparisons,
    epochs_to,
    mean_ci,
    paired_difference,
    seeds_for,
    seeds_for_power,
    speed,
)


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
    path = tmp_path / "h.csv"
    path.write_text(
        "epoch,train_loss,train_accuracy,val_loss,val_accuracy\n1,1,0.5,1,0.90\n2,1,0.5,1,0.951\n3,1,0.5,1,0.97\n"
    )
    history = read_history(path, "run", 0, epochs=3)
    assert epochs_to(history, 0.95) == 2 and epochs_to(history, 0.98) is None


def test_speed_gives_a_median_only_when_every_seed_got_there():
    assert speed([3, 5, 4]) == {"reached": 3, "of": 3, "median": 4}
    assert speed([3, None, 4]) == {"reached": 2, "of": 3, "median": None}


def test_paired_difference_of_hand_made_seeds():
    # Differences 0.02, 0.01, 0.03: mean 0.02, sd 0.01, half-width t(0.975, 2) * 0.01 / sqrt(3).
    stat = paired_difference([0.92, 0.91, 0.95], [0.90, 0.90, 0.92])
    assert stat["mean"] == pytest.approx(0.02) and stat["n"] == 3
    assert stat["ci95_low"] == pytest.approx(0.02 - 4.303 * 0.01 / math.sqrt(3), abs=1e-4)
    assert stat["ci95_high"] == pytest.approx(0.02 + 4.303 * 0.01 / math.sqrt(3), abs=1e-4)
    assert stat["verdict"] == "inconclusive"  # the interval includes zero and is wider than +-0.001
    assert stat["sd"] == pytest.approx(0.01) and stat["half_width"] == pytest.approx(
        4.303 * 0.01 / math.sqrt(3), abs=1e-4
    )


def test_pairing_finds_a_difference_that_separate_intervals_hide():
    # The seeds disagree by much more than the run differs from its reference, but every seed
    # gains about 0.01: the runs' own intervals overlap, the paired one lies above zero.
    run, reference = [0.91, 0.95, 0.99], [0.90, 0.94, 0.98]
    assert mean_ci(run)["ci95_low"] < mean_ci(reference)["ci95_high"]
    stat = paired_difference(run, reference)
    assert stat["ci95_low"] > 0 and stat["verdict"] == "higher"
    flipped = paired_difference(reference, run)
    assert flipped["ci95_high"] < 0 and flipped["verdict"] == "lower"


def test_no_effect_is_said_only_of_an_interval_within_the_resolution():
    # Differences of +-0.0005 around 0 over 10 seeds: sd 0.000527, half-width t(0.975, 9) * sd / sqrt(10).
    references = [0.99] * 10
    tight = paired_difference([0.99 + d for d in [0.0005, -0.0005] * 5], references)
    assert tight["half_width"] == pytest.approx(2.262 * 0.000527 / math.sqrt(10), rel=1e-3)
    assert tight["verdict"] == "no effect" and tight["half_width"] <= RESOLUTION
    loose = paired_difference([0.99 + d for d in [0.005, -0.005] * 5], references)
    assert loose["verdict"] == "inconclusive" and loose["half_width"] > RESOLUTION


def test_the_seeds_for_power_follow_the_normal_formula_with_the_t_correction():
    # 7.85 sd^2 / effect^2 (the paired form of 15.7 per arm), plus the few seeds t adds.
    for sd, effect in ((0.0013, 0.0035), (0.001, 0.001), (0.005, 0.002)):
        normal = 7.85 * sd**2 / effect**2
        assert normal < seeds_for_power(sd, effect) <= normal + 3, (sd, effect)
        assert seeds_for_power(sd, -effect) == seeds_for_power(sd, effect)
    assert seeds_for_power(0.001, 0.0) is None


def test_the_seeds_for_the_resolution_make_the_interval_that_narrow():
    for sd in (0.0005, 0.001, 0.002):
        n = seeds_for(sd)
        half = lambda k: stats.t.ppf(0.975, k - 1) * sd / math.sqrt(k)  # noqa: E731
        assert half(n) <= RESOLUTION < half(n - 1), sd
    # The normal approximation, 1.96^2 sd^2 / 0.001^2, is a little below: t widens small samples.
    assert 1.96**2 * 0.002**2 / RESOLUTION**2 < seeds_for(0.002) < 1.2 * 1.96**2 * 0.002**2 / RESOLUTION**2


def test_one_seed_gives_a_difference_without_an_interval():
    assert paired_difference([0.9], [0.8]) == {
        "mean": pytest.approx(0.1),
        "ci95_low": None,
        "ci95_high": None,
        "n": 1,
        "half_width": None,
        "sd": None,
        "verdict": "inconclusive",
        "seeds_for_resolution": None,
        "seeds_for_power": None,
    }


def test_seeds_are_paired_by_name_not_by_order():
    with pytest.raises(ValueError):
        paired_difference([0.9, 0.8], [0.9])


def test_comparisons_are_keyed_by_run_and_reference_per_study_over_the_seeds_both_have():
    params = {
        "seeds": 2,
        "studies": {"q": {"runs": ["a", "b"], "pairs": [["b", "a"]]}, "more": {"runs": ["a"], "seeds": 3}},
    }
    runs = {
        run: {"seeds": {str(s): {"test_accuracy": acc + s / 100} for s in range(n)}}
        for run, acc, n in (("a", 0.5, 3), ("b", 0.75, 2))
    }
    found = comparisons(params, runs)
    assert list(found) == ["q"] and list(found["q"]) == ["b_vs_a"]
    assert found["q"]["b_vs_a"]["run"] == "b" and found["q"]["b_vs_a"]["reference"] == "a"
    assert found["q"]["b_vs_a"]["mean"] == pytest.approx(0.25) and found["q"]["b_vs_a"]["n"] == 2
