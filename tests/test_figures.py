import pandas as pd
import pytest

from lenet_mnist.charts import long_history
from lenet_mnist.errors import LenetError
from lenet_mnist.figures import claim_rows, render_answer, sgd_steps, study_table


def test_long_history_keeps_each_value_with_its_run_epoch_and_split():
    history = pd.DataFrame(
        {
            "epoch": [1, 2, 1],
            "train_loss": [1.0, 0.5, 2.0],
            "train_accuracy": [0.1, 0.2, 0.3],
            "val_loss": [1.1, 0.6, 2.1],
            "val_accuracy": [0.4, 0.5, 0.6],
            "run": ["a", "a", "b"],
        }
    )
    long = long_history(history, ids=("epoch", "run"))
    assert len(long) == 12
    row = long[(long.run == "b") & (long.split == "validation") & (long.metric == "accuracy")]
    assert row.value.tolist() == [0.6] and row.epoch.tolist() == [1]
    row = long[(long.run == "a") & (long.epoch == 2) & (long.split == "train") & (long.metric == "loss")]
    assert row.value.tolist() == [0.5]


def run_spec(**changes):
    return {
        "model": "m",
        "optimizer": "o",
        "policy": "none",
        "fraction": 1.0,
        "batch_size": 100,
        "epochs": 15,
        **changes,
    }


def judged(verdict, mean, low, high, **more):
    return {
        "run": "a",
        "reference": "base",
        "metric": "test_accuracy",
        "at": None,
        "expect": "higher",
        "margin": None,
        "phase": "confirmatory" if verdict != "exploratory" else "exploratory",
        "seeds_needed": 3,
        "power": 0.93,
        "mean": mean,
        "ci95_low": low,
        "ci95_high": high,
        "n": 3,
        "p": 0.01,
        "p_holm": 0.02 if verdict != "exploratory" else None,
        "verdict": verdict,
        **more,
    }


def summary_of(*claims):
    stat = {"mean": 0.9, "ci95_low": 0.89, "ci95_high": 1.02, "n": 3}
    return {
        "runs": {
            "base": {
                "test_accuracy": stat,
                "epochs_to_val_95": {"reached": 3, "of": 3, "median": 4},
                "epochs_to_val_98": {"reached": 1, "of": 3, "median": None},
            }
        },
        "claims": {"q": {f"c{i}": c for i, c in enumerate(claims)}},
    }


def test_an_answer_gets_its_numbers_from_the_summary():
    summary = summary_of(judged("higher", 0.05, 0.01, 0.09))
    text = "Augmentation helps: {claim q c0}.\n  The reference scores {run base}."
    assert render_answer(text, summary) == (
        "Augmentation helps: +0.0500 [+0.0100, +0.0900] (n=3), higher. The reference scores "
        "0.9000 [0.8900, 1.0000] (n=3)."  # an accuracy's interval is shown clipped to [0, 1]
    )
    with pytest.raises(LenetError, match="names no claim or run"):
        render_answer("{claim q nope}", summary)


def test_a_claim_that_resolves_nothing_says_how_large_the_difference_may_be():
    summary = summary_of(judged("not resolved", 0.0012, -0.0001, 0.0026), judged("exploratory", -0.002, -0.005, 0.001))
    rows = claim_rows(summary, "q")
    assert rows[0]["verdict"] == "not resolved (difference within +-0.0026)"
    assert rows[1]["verdict"] == "exploratory, no verdict (difference within +-0.0050)" and rows[1]["p_holm"] == ""
    assert rows[0]["claim"] == "a against base, test accuracy" and rows[0]["p_holm"] == "0.0200"


def test_the_study_table_lists_each_runs_updates_and_speed():
    params = {"split": {"val_size": 10_000}, "runs": {"base": run_spec()}}
    rows = study_table(params, summary_of(), {"runs": ["base"]})
    assert rows[0]["sgd_steps"] == "7,500" and rows[0]["epochs_to_val_95"] == "4"
    assert rows[0]["epochs_to_val_98"] == "1 of 3 seeds"
    assert sgd_steps({"split": {"val_size": 10_000}, "runs": {"s": run_spec(fraction=0.2, epochs=75)}}, "s") == 7_500
