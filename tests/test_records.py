"""Histories and metrics are read back for what they mean: their run and seed, every epoch, finite
numbers in range. A truncated, foreign or corrupt file is one error that names it."""

import json

import pytest

from lenet_mnist.errors import LenetError
from lenet_mnist.records import HISTORY_COLUMNS, read_history, read_json, read_metrics, write_history


def history_rows(epochs):
    return [dict(zip(HISTORY_COLUMNS, [e, 1.0 / e, 0.5, 1.0 / e, 0.6])) for e in range(1, epochs + 1)]


def test_a_history_reads_back_as_written(tmp_path):
    write_history(tmp_path / "0.csv", history_rows(3))
    assert read_history(tmp_path / "0.csv", "run", 0, epochs=3) == history_rows(3)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda text: text.rsplit("\n", 2)[0] + "\n", "has epochs .* not 1 to 3 \\(truncated\\?\\)"),
        (lambda text: text.replace("2,", "1,", 1), "not 1 to 3"),
        (lambda text: text.replace("0.6", "nan", 1), "epoch 1 .* holds a value out of range"),
        (lambda text: text.replace("0.6", "1.6", 1), "epoch 1 .* holds a value out of range"),
        (lambda text: text.replace("0.5", "half", 1), "not the history of run run, seed 0"),
        (lambda text: text.replace("val_accuracy", "accuracy"), "columns"),
        (lambda text: "", "columns None"),
    ],
    ids=["truncated", "an epoch twice", "NaN", "an accuracy above 1", "a word", "another column", "empty"],
)
def test_a_history_that_is_not_the_runs_whole_history_is_refused(tmp_path, edit, message):
    path = tmp_path / "0.csv"
    write_history(path, history_rows(3))
    path.write_text(edit(path.read_text()))
    with pytest.raises(LenetError, match=f"^{path}: .*{message}"):
        read_history(path, "run", 0, epochs=3)


def metrics(**changes):
    return {"run": "small", "seed": 1, "test_accuracy": 0.9, "test_loss": 0.3, **changes}


@pytest.mark.parametrize(
    "text, message",
    [
        (json.dumps(metrics(seed=0)), r"the metrics of \(run, seed\) \('small', 0\), not of run small, seed 1"),
        (json.dumps(metrics(run="larger")), "not of run small, seed 1"),
        (json.dumps(metrics(test_accuracy=float("nan"))), "NaN is not a number JSON allows"),
        (json.dumps(metrics(test_accuracy=1.5)), "must be numbers, an accuracy in"),
        (json.dumps(metrics(test_loss=None)), "must be numbers"),
        ('{"run": "small", "seed": 1, "test_acc', "not the metrics of run small, seed 1"),
        ("[1, 2]", r"the metrics of \(run, seed\) None"),
        (b"\xff\xfe", "not UTF-8 text"),
    ],
    ids=["another seed", "another run", "NaN", "out of range", "missing", "corrupt", "a list", "binary"],
)
def test_metrics_that_are_not_the_runs_and_seeds_are_refused(tmp_path, text, message):
    path = tmp_path / "1.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(LenetError, match=f"^{path}: .*{message}"):
        read_metrics(path, "small", 1)


def test_the_metrics_of_the_run_and_seed_are_read(tmp_path):
    path = tmp_path / "1.json"
    path.write_text(json.dumps(metrics()))
    assert read_metrics(path, "small", 1) == metrics()
    with pytest.raises(LenetError, match="Infinity is not a number JSON allows"):
        path.write_text('{"x": Infinity}')
        read_json(path, "a summary")
