import json
import shutil

import pytest
from conftest import ROOT

from lenet_mnist.errors import LenetError
from lenet_mnist.tables import DOCUMENTS, tables

SOURCES = [
    "results/summary.json",
    "results/figures/report.json",
    "benchmarks/study.json",
    "benchmarks/results.json",
    "benchmarks/drift.json",
    "benchmarks/verdicts.json",
    "results/design.json",
]


def test_the_committed_tables_are_what_the_results_give():
    tables(ROOT, check=True)


@pytest.fixture
def copy(tmp_path):
    for name in [*DOCUMENTS, *SOURCES]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def test_a_table_edited_by_hand_is_caught_and_rewritten(copy):
    readme = copy / "README.md"
    original = readme.read_text()
    summary = json.loads((copy / "results/summary.json").read_text())
    accuracy = summary["runs"][summary["studies"]["best_lenet"]["highest_mean"]]["test_accuracy"]
    shown = f"{accuracy['mean']:.4f}"
    assert f"| {shown} [" in original
    readme.write_text(original.replace(f"| {shown} [", f"| {accuracy['mean'] + 0.001:.4f} ["))
    with pytest.raises(LenetError, match="README.md: tables differ from the results; run lenet-mnist tables"):
        tables(copy, check=True)
    tables(copy)
    assert readme.read_text() == original


def test_new_results_change_the_tables(copy):
    path = copy / "results/summary.json"
    metrics = json.loads(path.read_text())
    top = metrics["studies"]["best_lenet"]["highest_mean"]
    metrics["runs"][top]["test_accuracy"]["mean"] += 0.001  # what the README's results table shows
    path.write_text(json.dumps(metrics))
    with pytest.raises(LenetError, match="README.md"):
        tables(copy, check=True)
