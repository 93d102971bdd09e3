"""End to end: DVC experiments on the smoke study."""

import json
import re
import time

import pytest
from e2e import run

pytestmark = pytest.mark.e2e


def test_an_experiment_becomes_a_branch_to_diff_against_main(built_copy, wheel_cache):
    env = {"LENET_MNIST_CACHE": str(wheel_cache)}
    main = json.loads((built_copy / "results/metrics.json").read_text())
    run(["dvc", "exp", "run", "-S", "optimizers.adam.lr=0.003", "-n", "faster_adam"], built_copy, env)
    edited = json.loads((built_copy / "results/metrics.json").read_text())
    # DVC wrote back its own line alone (params.yaml is in the layout -S writes).
    diff = run(["git", "diff", "--unified=0", "params.yaml"], built_copy).stdout.splitlines()
    assert [line for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---")] == [
        "-  adam: {name: adam, lr: 0.001}",
        "+  adam: {name: adam, lr: 0.003}",
    ]

    # The table of README.md: the experiment, the param it changed and the metrics that moved; of
    # workflow/jobs.yaml, DVC shows the digest alone, even in the full table.
    header = run(["dvc", "exp", "show", "--csv"], built_copy, env).stdout.splitlines()[0].split(",")
    assert "digest" in header and not any(name.startswith(("run_jobs", "prepare_jobs")) for name in header)
    readable = ["dvc", "exp", "show", "--only-changed", "--drop", r".*/|params\.yaml$", "--csv"]
    header = run(readable, built_copy, env).stdout.splitlines()[0].split(",")
    assert "optimizers.adam.lr" in header and "runs.larger.test_accuracy" in header
    assert not any(name.startswith(("runs.small", "optimizers.sgd")) or "/" in name for name in header)

    # `dvc exp show`: the experiment's params and metrics beside the baseline's.
    [workspace, baseline] = json.loads(run(["dvc", "exp", "show", "--json"], built_copy, env).stdout)
    [experiment] = baseline["experiments"]
    assert baseline["name"] == "main" and experiment["name"] == "faster_adam"
    shown = {"main": baseline["data"], "faster_adam": experiment["revs"][0]["data"]}
    assert shown["faster_adam"]["params"]["params.yaml"]["data"]["optimizers"]["adam"]["lr"] == 0.003
    for name, metrics in (("main", main), ("faster_adam", edited)):
        assert shown[name]["metrics"]["results/metrics.json"]["data"] == metrics

    # A branch from it: `dvc metrics diff` and `dvc plots diff` against main, from git alone.
    run(["dvc", "exp", "branch", "faster_adam", "edited"], built_copy, env)
    diff = json.loads(run(["dvc", "metrics", "diff", "main", "edited", "--json"], built_copy, env).stdout)
    # Only what changed: larger's mean (its n is the same), and the claims that hold it.
    diff = diff["results/metrics.json"]
    claim = "claims.smoke.larger_vs_small.test_accuracy"
    assert "runs.larger.test_accuracy" in diff and not any(key.startswith("runs.small") for key in diff)
    assert f"{claim}.diff" in diff and not any(key.endswith(".n") for key in diff)
    assert diff["runs.larger.test_accuracy"]["old"] == main["runs"]["larger"]["test_accuracy"]
    assert diff["runs.larger.test_accuracy"]["new"] == edited["runs"]["larger"]["test_accuracy"]
    assert diff[f"{claim}.diff"]["new"] == edited["claims"]["smoke"]["larger_vs_small.test_accuracy"]["diff"]
    plots = json.loads(run(["dvc", "plots", "diff", "main", "edited", "--json", "--split"], built_copy, env).stdout)
    assert set(plots["data"]) == {
        "training_loss",
        "validation_accuracy",
        "accuracy_vs_training_size",
        "results/figures/confusion.csv",
    }
    assert all(plot["revisions"] == ["main", "edited"] for [plot] in plots["data"].values())
    run(["dvc", "plots", "diff", "main", "edited"], built_copy, env)
    # Offline: vega inlined from this environment (Makefile), no script from a CDN; each revision
    # its own dash style, named in the legend.
    page = (built_copy / "dvc_plots/index.html").read_text()
    assert "vegaEmbed" in page and not re.search(r"<script[^>]*\bsrc=", page)
    revisions = '"strokeDash": {"field": "rev", "type": "nominal", "legend": null}, "shape": {"field": "rev"'
    assert page.count(revisions) == 3  # a dash style and a point shape each, and the shapes in the legend


def test_queued_experiments_run_side_by_side(built_copy, wheel_cache):
    """`dvc exp run --queue` twice, `dvc queue start -j 2`: both finish, with their own metrics."""
    env = {"LENET_MNIST_CACHE": str(wheel_cache)}
    rates = {"adam_2": 0.002, "adam_3": 0.003}
    for name, lr in rates.items():
        run(["dvc", "exp", "run", "--queue", "-S", f"optimizers.adam.lr={lr}", "-n", name], built_copy, env)
    try:
        assert (
            "Started '2' new experiments task queue workers"
            in run(["dvc", "queue", "start", "-j", "2"], built_copy, env).stdout
        )
        deadline = time.monotonic() + 300
        while re.search(r"\b(Queued|Running)\b", status := run(["dvc", "queue", "status"], built_copy, env).stdout):
            assert time.monotonic() < deadline, status
            time.sleep(2)
        assert all(re.search(rf"{name}\s+\S+ \S+\s+Success", status) for name in rates), status
    finally:
        run(["dvc", "queue", "stop", "--kill"], built_copy, env, check=False)
    [_, baseline] = json.loads(run(["dvc", "exp", "show", "--json"], built_copy, env).stdout)
    shown = {e["name"]: e["revs"][0]["data"] for e in baseline["experiments"]}
    assert set(shown) == set(rates)
    accuracy = {
        name: data["metrics"]["results/metrics.json"]["data"]["runs"]["larger"]["test_accuracy"]
        for name, data in shown.items()
    }
    for name, lr in rates.items():
        assert shown[name]["params"]["params.yaml"]["data"]["optimizers"]["adam"]["lr"] == lr
    main = json.loads((built_copy / "results/metrics.json").read_text())["runs"]["larger"]["test_accuracy"]
    assert len({main, *accuracy.values()}) == 3  # each learning rate trained its own model
