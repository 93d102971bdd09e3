import json
import math

import pytest

from lenet_mnist.design import design
from lenet_mnist.errors import LenetError
from lenet_mnist.records import write_history
from lenet_mnist.stats import power, sd_upper


def rows(val, losses):
    return [
        {"epoch": e, "train_loss": loss, "train_accuracy": 0.5, "val_loss": 0.1, "val_accuracy": val}
        for e, loss in enumerate(losses, start=1)
    ]


def study(claims, seeds=3):
    return {
        "seeds": seeds,
        "design": {"pilot_seeds": 3, "power": 0.9, "max_seeds": 10, "sd_confidence": 0.8},
        "runs": {"a": {"epochs": 2}, "b": {"epochs": 2}},
        "studies": {"q": {"runs": ["a", "b"], "claims": claims}},
    }


@pytest.fixture
def pilot(tmp_path):
    """Three pilot seeds: b's validation accuracy 0.010, 0.012 and 0.014 above a's; the test set of
    neither exists, so reading it would fail. One retrained job drifted by 0.001."""
    for seed, gain in enumerate([0.010, 0.012, 0.014]):
        write_history(tmp_path / "history" / "a" / f"{seed}.csv", rows(0.9, [2.0, 1.0]))
        write_history(tmp_path / "history" / "b" / f"{seed}.csv", rows(0.9 + gain, [1.5, 0.5]))
    drift = {
        "machine": None,
        "when": "x",
        "jobs": {"a/0": {"native": rows(0.9, [2.0, 1.0]), "avx2": rows(0.901, [2.0, 1.0])}},
    }
    (tmp_path / "drift.json").write_text(json.dumps(drift))
    return tmp_path


def test_a_claim_is_sized_from_its_validation_pilot_and_the_drift(pilot):
    claims = [{"run": "b", "reference": "a", "metric": "test_accuracy", "expect": "higher"}]
    design(study(claims), pilot / "history", pilot / "drift.json", pilot / "design.json")
    found = json.loads((pilot / "design.json").read_text())["claims"]["q"]["b_vs_a.test_accuracy"]
    assert found["pilot"]["mean"] == pytest.approx(0.012) and found["pilot"]["sd"] == pytest.approx(0.002)
    assert found["drift"] == pytest.approx(0.001)
    planned = math.sqrt(sd_upper(0.002, 3) ** 2 + 2 * 0.001**2)
    assert found["planned_sd"] == pytest.approx(planned)
    n = found["seeds_needed"]
    assert power(n, 0.012, planned, 0.05) >= 0.9 > power(n - 1, 0.012, planned, 0.05)
    assert found["phase"] == ("confirmatory" if n <= 3 else "exploratory") and found["seeds"] == 3


def test_a_claim_beyond_the_budget_is_exploratory_and_the_family_sets_the_level(pilot):
    claims = [
        {"run": "b", "reference": "a", "metric": "test_accuracy", "expect": "higher", "seeds": 10},
        {"run": "b", "reference": "a", "metric": "train_loss", "at": 2, "expect": "equivalent", "margin": 0.001},
    ]
    design(study(claims), pilot / "history", pilot / "drift.json", pilot / "design.json")
    found = json.loads((pilot / "design.json").read_text())["claims"]["q"]
    accuracy, loss = found["b_vs_a.test_accuracy"], found["b_vs_a.train_loss_epoch_2"]
    assert accuracy["alpha"] == pytest.approx(0.025) and accuracy["phase"] == "confirmatory"
    # Every pilot seed gives -0.5, far outside +-0.001: no number of seeds shows equivalence.
    assert loss["seeds_needed"] is None and loss["phase"] == "exploratory"


def test_a_drift_file_without_jobs_is_refused(pilot):
    (pilot / "drift.json").write_text(json.dumps({"jobs": {}}))
    claims = [{"run": "b", "reference": "a", "metric": "test_accuracy", "expect": "higher"}]
    with pytest.raises(LenetError, match="no retrained jobs"):
        design(study(claims), pilot / "history", pilot / "drift.json", pilot / "design.json")
