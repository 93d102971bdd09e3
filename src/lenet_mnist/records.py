"""The files that later stages read back: JSON documents, and the history and metrics of a
(run, seed). Each is checked for what it means (its run and seed, every epoch, finite numbers
in range), not only for its shape, so that a truncated, foreign or corrupt file is one error
that names it rather than a wrong plot or summary."""

import csv
import json
import math

from lenet_mnist.errors import LenetError
from lenet_mnist.files import atomic_path

HISTORY_COLUMNS = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy"]


def read_json(path, what):
    """A JSON document; NaN and infinities (which Python's json writes and reads) are refused."""

    def refuse(constant):
        raise ValueError(f"{constant} is not a number JSON allows")

    try:
        return json.loads(path.read_text(), parse_constant=refuse)
    except UnicodeDecodeError:
        raise LenetError(f"{path}: not {what} (not UTF-8 text)") from None
    except ValueError as e:
        raise LenetError(f"{path}: not {what} ({e})") from None


def _fraction(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1


def _loss(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def write_history(path, rows):
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=HISTORY_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def read_history(path, run, seed, epochs):
    """The rows of a (run, seed) history, as numbers: every epoch from 1 to `epochs`, once each,
    losses finite and non-negative, accuracies in [0, 1]."""
    what = f"the history of run {run}, seed {seed}"
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames != HISTORY_COLUMNS:
                raise LenetError(f"{path}: not {what} (columns {reader.fieldnames}, expected {HISTORY_COLUMNS})")
            rows = [{key: (int if key == "epoch" else float)(value) for key, value in row.items()} for row in reader]
    except (ValueError, TypeError, UnicodeDecodeError) as e:  # a cell that is no number, or missing
        raise LenetError(f"{path}: not {what} ({e})") from None
    found = [row["epoch"] for row in rows]
    if found != list(range(1, epochs + 1)):
        raise LenetError(f"{path}: {what} has epochs {found[:3]}...{found[-3:]}, not 1 to {epochs} (truncated?)")
    for row in rows:
        if not all(_loss(row[key]) for key in ("train_loss", "val_loss")) or not all(
            _fraction(row[key]) for key in ("train_accuracy", "val_accuracy")
        ):
            raise LenetError(f"{path}: epoch {int(row['epoch'])} of {what} holds a value out of range: {row}")
    return rows


def read_metrics(path, run, seed):
    """The test metrics of a (run, seed), written by evaluate for that run and seed."""
    metrics = read_json(path, f"the metrics of run {run}, seed {seed}")
    if not isinstance(metrics, dict) or (metrics.get("run"), metrics.get("seed")) != (run, seed):
        found = (metrics.get("run"), metrics.get("seed")) if isinstance(metrics, dict) else None
        raise LenetError(f"{path}: the metrics of (run, seed) {found}, not of run {run}, seed {seed}")
    if not _fraction(metrics.get("test_accuracy")) or not _loss(metrics.get("test_loss")):
        raise LenetError(
            f"{path}: test_accuracy {metrics.get('test_accuracy')!r} and test_loss {metrics.get('test_loss')!r} "
            "must be numbers, an accuracy in [0, 1] and a finite loss >= 0"
        )
    return metrics


def history_of(params, history_dir, run, seed):
    """read_history of <history_dir>/<run>/<seed>.csv, for the run's epochs in params.yaml."""
    return read_history(history_dir / run / f"{seed}.csv", run, seed, params["runs"][run]["epochs"])
