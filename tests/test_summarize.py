import pytest

from lenet_mnist.records import read_history
from lenet_mnist.summarize import epochs_to, predictions, ranking, speed, study_claims


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


def test_predictions_are_the_confusion_matrix_columns_and_rows():
    # Every image predicted as class 1: its share of predictions is 1, the labels' shares are the rows.
    matrix = [[0] * 10 for _ in range(10)]
    matrix[0][1], matrix[1][1], matrix[2][1] = 2, 5, 3
    predicted, labels = predictions({"confusion_matrix": matrix})
    assert predicted[1] == 1.0 and sum(predicted) == 1.0
    assert labels[:3] == [0.2, 0.5, 0.3]


def per_class(value):
    return {str(c): value for c in range(10)}


def test_claims_pair_seeds_by_name_and_read_the_test_set_or_the_training_loss():
    params = {
        "seeds": 2,
        "runs": {"a": {"epochs": 2}, "b": {"epochs": 2}},
        "studies": {
            "q": {
                "runs": ["a", "b"],
                "claims": [
                    {"run": "b", "reference": "a", "metric": "test_accuracy", "expect": "higher", "seeds": 3},
                    {"run": "b", "reference": "a", "metric": "train_loss", "at": 2, "expect": "lower"},
                ],
            }
        },
    }
    history = {
        run: {s: [{"epoch": 1, "train_loss": 2.0}, {"epoch": 2, "train_loss": loss + s}] for s in range(3)}
        for run, loss in (("a", 1.0), ("b", 0.5))
    }
    metrics = {
        run: {s: {"test_accuracy": acc + s / 100, "per_class_accuracy": per_class(acc)} for s in range(3)}
        for run, acc in (("a", 0.5), ("b", 0.75))
    }
    planned = {"phase": "confirmatory", "seeds_needed": 3, "power": 0.95}
    design = {"claims": {"q": {"b_vs_a.test_accuracy": planned, "b_vs_a.train_loss_epoch_2": planned}}}
    found = study_claims(params, "q", design, history, metrics)
    accuracy, loss = found["b_vs_a.test_accuracy"], found["b_vs_a.train_loss_epoch_2"]
    assert accuracy["differences"] == pytest.approx([0.25] * 3) and accuracy["n"] == 3
    assert accuracy["verdict"] == "higher" and accuracy["fixed_in"] == "validation"
    assert accuracy["per_class"]["7"]["mean"] == pytest.approx(0.25)
    assert loss["differences"] == pytest.approx([-0.5] * 3) and loss["verdict"] == "lower"
    assert "per_class" not in loss


def test_the_highest_mean_is_best_only_when_a_claim_resolves_it_from_the_runner_up():
    runs = {run: {"test_accuracy": {"mean": mean}} for run, mean in (("a", 0.9), ("b", 0.95), ("c", 0.93))}
    params = {"studies": {"q": {"runs": ["a", "b", "c"]}}}
    claim = {"run": "b", "reference": "c", "metric": "test_accuracy", "verdict": "higher"}
    assert ranking(params, "q", runs, {"b_vs_c.test_accuracy": claim}) == {
        "highest_mean": "b",
        "runner_up": "c",
        "resolved_by": "b_vs_c.test_accuracy",
    }
    unresolved = {"b_vs_c.test_accuracy": {**claim, "verdict": "not resolved"}}
    assert ranking(params, "q", runs, unresolved)["resolved_by"] is None
    assert ranking(params, "q", runs, {})["resolved_by"] is None
