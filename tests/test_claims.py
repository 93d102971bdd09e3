import pytest

from lenet_mnist.claims import confirmed_value, epochs_to_loss, judge, key, label, validation_value


def history(losses, val=0.9):
    return [
        {"epoch": e, "train_loss": loss, "train_accuracy": 0.5, "val_loss": 1.0, "val_accuracy": val}
        for e, loss in enumerate(losses, start=1)
    ]


def claim(metric="test_accuracy", at=None, **more):
    return {"run": "a", "reference": "b", "metric": metric, **({"at": at} if at is not None else {}), **more}


def test_labels_are_json_keys_without_dots():
    assert label(claim()) == "test_accuracy"
    assert label(claim("train_loss", 5)) == "train_loss_epoch_5"
    assert label(claim("epochs_to_train_loss", 0.5)) == "epochs_to_train_loss_below_0_5"
    assert key(claim("epochs_to_train_loss", 1.0)) == "a_vs_b.epochs_to_train_loss_below_1"


def test_a_run_that_never_gets_below_the_threshold_counts_as_one_epoch_more():
    assert epochs_to_loss(history([2.3, 0.9, 0.4]), 1.0) == 2
    assert epochs_to_loss(history([2.3, 2.3, 2.3]), 1.0) == 4


def test_the_validation_phase_reads_validation_accuracy_never_the_test_set():
    rows, metrics = history([2.0, 1.0], val=0.97), {"test_accuracy": 0.5}
    assert validation_value(claim(), rows) == 0.97
    assert confirmed_value(claim(), rows, metrics) == 0.5
    for c in (claim("train_loss", 2), claim("epochs_to_train_loss", 1.5)):
        assert validation_value(c, rows) == confirmed_value(c, rows, metrics)
    assert confirmed_value(claim("train_loss", 1), rows, None) == 2.0


def test_holm_decides_the_verdicts_of_the_confirmatory_claims_alone():
    claims = [claim(expect="higher"), claim(expect="higher"), claim(expect="lower"), claim(expect="higher")]
    differences = [
        [0.010, 0.011, 0.012, 0.010],  # p about 4e-5: higher after the adjustment
        [0.001, 0.003, -0.001, 0.002],  # p about 0.2: not resolved
        [-0.02, -0.021, -0.019, -0.0205],  # lower
        [0.001, 0.002, 0.001, 0.002],  # exploratory: no verdict, outside the family
    ]
    judged = judge(claims, differences, [True, True, True, False])
    assert [j["verdict"] for j in judged] == ["higher", "not resolved", "lower", "exploratory"]
    assert [j["family_size"] for j in judged] == [3, 3, 3, None]
    assert judged[3]["p_holm"] is None and judged[3]["p"] is not None
    smallest = min(j["p"] for j in judged[:3])
    assert min(j["p_holm"] for j in judged[:3]) == pytest.approx(3 * smallest)


def test_a_difference_against_the_expected_direction_is_said_as_it_is():
    judged = judge([claim(expect="higher")], [[-0.01, -0.011, -0.012]], [True])
    assert judged[0]["verdict"] == "lower"


def test_equivalence_needs_the_margin_test():
    c = claim("train_loss", 5, expect="equivalent", margin=0.01)
    assert judge([c], [[0.0002, -0.0001, 0.0003, 0.0]], [True])[0]["verdict"] == "equivalent"
    assert judge([c], [[0.02, -0.03, 0.01]], [True])[0]["verdict"] == "not resolved"
