import math

import pytest
from scipy import stats

from lenet_mnist.stats import holm, mean_ci, paired_test, power, sd_upper, seeds_needed


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


def test_the_paired_test_of_hand_made_differences():
    # Differences 0.02, 0.01, 0.03: mean 0.02, sd 0.01, t = 0.02 / (0.01 / sqrt(3)) = 3.464 on 2 df.
    test = paired_test([0.02, 0.01, 0.03])
    assert test["mean"] == pytest.approx(0.02) and test["sd"] == pytest.approx(0.01) and test["n"] == 3
    assert test["ci95_low"] == pytest.approx(0.02 - 4.303 * 0.01 / math.sqrt(3), abs=1e-4)
    assert test["p"] == pytest.approx(2 * stats.t.sf(2 * math.sqrt(3), 2), rel=1e-9)
    assert test["p"] == pytest.approx(stats.ttest_1samp([0.02, 0.01, 0.03], 0).pvalue, rel=1e-6)


def test_equivalence_is_two_one_sided_tests_against_the_margin():
    differences = [0.001, -0.001, 0.0005, 0.0]
    test = paired_test(differences, margin=0.01)
    low = stats.ttest_1samp(differences, -0.01, alternative="greater").pvalue
    high = stats.ttest_1samp(differences, 0.01, alternative="less").pvalue
    assert test["p"] == pytest.approx(max(low, high), rel=1e-6) and test["p"] < 0.05
    assert paired_test(differences, margin=0.0001)["p"] > 0.5


def test_equal_differences_on_every_seed_are_exact():
    assert paired_test([-15.0, -15.0, -15.0])["p"] == 0.0
    assert paired_test([0.0, 0.0])["p"] == 1.0
    assert paired_test([0.0, 0.0], margin=1)["p"] == 0.0


@pytest.mark.parametrize(
    "n, effect, sd, alpha",
    [
        (3, 0.0022, 0.001, 0.05),
        (4, 0.0068, 0.0022, 0.05 / 6),
        (10, 0.001, 0.002, 0.05),
        (2, 1.0, 0.5, 0.05),
        (30, -0.3, 1.0, 0.01),
        (8, 0.0013, 0.0013, 0.05),
    ],
)
def test_power_equals_the_noncentral_t_of_scipy(n, effect, sd, alpha):
    # Two numerical methods in float64: quadrature asked for 1e-10 relative, and scipy's series for
    # the noncentral t (about 1e-12); 1e-8 is far above both and far below any power that matters.
    df, nc = n - 1, math.sqrt(n) * effect / sd
    c = stats.t.ppf(1 - alpha / 2, df)
    assert power(n, effect, sd, alpha) == pytest.approx(stats.nct.sf(c, df, nc) + stats.nct.cdf(-c, df, nc), abs=1e-8)


def test_the_issues_example_needs_four_seeds_not_three():
    # combined_cosine_rotate_flip_20 against combined_cosine_20: -0.0068 at sd 0.0022 (n=4).
    assert power(3, -0.0068, 0.0022) == pytest.approx(0.767, abs=0.005)  # the issue rounded sd to 0.0022
    assert seeds_needed(-0.0068, 0.0022, 0.05, 0.8, 20) == 4


def test_tost_power_matches_a_simulation():
    import numpy as np

    rng = np.random.default_rng(0)
    n, effect, sd, margin, trials = 5, 0.002, 0.004, 0.01, 20_000
    samples = rng.normal(effect, sd, size=(trials, n))
    means, sds = samples.mean(axis=1), samples.std(axis=1, ddof=1)
    c = stats.t.ppf(0.95, n - 1)
    hits = np.mean((means - c * sds / math.sqrt(n) > -margin) & (means + c * sds / math.sqrt(n) < margin))
    # The simulation's binomial standard error is at most 0.5 / sqrt(20000) = 0.0035.
    assert power(n, effect, sd, margin=margin) == pytest.approx(hits, abs=4 * 0.0035)


def test_the_seeds_needed_are_the_first_with_enough_power():
    n = seeds_needed(0.002, 0.002, 0.01, 0.9, 50)
    assert power(n, 0.002, 0.002, 0.01) >= 0.9 > power(n - 1, 0.002, 0.002, 0.01)
    assert seeds_needed(0.0001, 0.01, 0.05, 0.9, 10) is None
    assert seeds_needed(0.0, 0.01, 0.05, 0.9, 10) is None


def test_the_sd_upper_bound_is_the_chi_square_bound():
    # Over 3 seeds, 2 df: chi2(0.2, 2) = 0.446, so the 80% bound is sd * sqrt(2 / 0.446).
    assert sd_upper(1.0, 3) == pytest.approx(math.sqrt(2 / 0.4463), rel=1e-3)
    assert sd_upper(1.0, 30) < sd_upper(1.0, 3)


def test_holm_adjusts_the_smallest_p_by_the_family_and_keeps_order():
    # Sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04 -> monotone 0.06.
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []
