import pandas as pd

from lenet_mnist.figures import curves_of, decompositions, differences, sgd_steps, study_answer, study_table
from lenet_mnist.plot import long_history
from lenet_mnist.summarize import verdict


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


def comparison(run, reference, mean, low, high):
    return {
        "run": run,
        "reference": reference,
        "mean": mean,
        "ci95_low": low,
        "ci95_high": high,
        "n": 3,
        "half_width": (high - low) / 2,
        "verdict": verdict({"ci95_low": low, "ci95_high": high, "half_width": (high - low) / 2}),
    }


def test_a_difference_split_by_an_intermediate_run_is_found_and_adds_up():
    params = {
        "split": {"val_size": 10_000},
        "runs": {"full": run_spec(), "small": run_spec(fraction=0.2), "small_long": run_spec(fraction=0.2, epochs=75)},
    }
    pairs = [("small", "full"), ("small", "small_long"), ("small_long", "full")]
    assert decompositions(pairs) == [("small", "small_long", "full")]
    assert differences(params, "small", "small_long") == "epochs 15 against 75"
    assert differences(params, "small_long", "full") == "fraction 0.2 against 1, epochs 75 against 15"
    assert [sgd_steps(params, run) for run in ("full", "small", "small_long")] == [7_500, 1_500, 7_500]
    found = [
        comparison(*pairs[0], -0.08, -0.09, -0.07),
        comparison(*pairs[1], -0.06, -0.07, -0.05),
        comparison(*pairs[2], -0.02, -0.03, -0.01),
    ]
    summary = {"runs": {}, "comparisons": {"q3": {f"{c['run']}_vs_{c['reference']}": c for c in found}}}
    spec = {"figure": "data_size", "runs": list(params["runs"]), "pairs": [list(pair) for pair in pairs]}
    text = study_answer(params, summary, "q3", spec)
    assert text == (
        "Seed by seed, of small against full, -0.0800 [-0.0900, -0.0700] (n=3), -0.0600 (75%) is small "
        "against small_long (epochs 15 against 75) and -0.0200 (25%) is small_long against full "
        "(fraction 0.2 against 1, epochs 75 against 15)."
    )


def test_the_answer_counts_pairs_by_their_reference_and_the_table_lists_each_runs_differences():
    stat = {"mean": 0.9, "ci95_low": 0.89, "ci95_high": 0.91, "n": 3}
    speed = {"reached": 3, "of": 3, "median": 4}
    params = {
        "split": {"val_size": 10_000},
        "runs": {"base": run_spec(), "a": run_spec(policy="p"), "b": run_spec(policy="q")},
    }
    summary = {
        "runs": {
            run: {
                "test_accuracy": {**stat, "mean": mean},
                "epochs_to_val_95": speed,
                "epochs_to_val_98": {"reached": 1, "of": 3, "median": None},
            }
            for run, mean in (("base", 0.9), ("a", 0.95), ("b", 0.85))
        },
        "comparisons": {
            "q": {
                "a_vs_base": comparison("a", "base", 0.05, 0.01, 0.09),
                "b_vs_base": comparison("b", "base", -0.05, -0.2, 0.1),
            }
        },
    }
    spec = {"figure": "learning_curves", "runs": ["base", "a", "b"], "pairs": [["a", "base"], ["b", "base"]]}
    assert study_answer(params, summary, "q", spec) == (
        "a has the best mean test accuracy, 0.9500 [0.8900, 0.9100] (n=3). Against m, o, policy none, by their "
        "paired 95% intervals, of 2 comparisons 1 higher (a against base +0.0500 [+0.0100, +0.0900] (n=3)), "
        "1 inconclusive (b against base -0.0500 [-0.2000, +0.1000] (n=3))."
    )
    rows = study_table(params, summary, "q", spec)
    assert [row["paired"] for row in rows] == [
        "",
        "+0.0500 [+0.0100, +0.0900] (n=3) against base",
        "-0.0500 [-0.2000, +0.1000] (n=3) against base",
    ]
    assert rows[0]["sgd_steps"] == "7,500" and rows[0]["epochs_to_val_95"] == "4"
    assert rows[0]["epochs_to_val_98"] == "1 of 3 seeds"
    spec["pairs"].remove(["a", "base"])
    assert study_answer(params, summary, "q", spec).endswith(
        "Against m, o, policy none, b differs by -0.0500 [-0.2000, +0.1000] (n=3): inconclusive."
    )


def test_a_size_figure_has_a_point_per_curve_and_run():
    params = {
        "split": {"val_size": 10_000},
        "runs": {"full": run_spec(), "small": run_spec(fraction=0.2), "aug": run_spec(fraction=0.2, policy="p")},
    }
    assert curves_of(params, {"runs": ["full", "small", "aug"]}) == [
        ("o, none", "full"),
        ("o, none", "small"),
        ("o, p", "aug"),
    ]
    spec = {"runs": ["full", "small", "aug"], "curves": {"plain": ["small", "full"], "augmented": ["aug", "full"]}}
    assert curves_of(params, spec) == [
        ("plain", "small"),
        ("plain", "full"),
        ("augmented", "aug"),
        ("augmented", "full"),
    ]
