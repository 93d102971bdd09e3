"""Stage `summarize`: every run's test metrics in one git-tracked file for `dvc metrics diff`."""

import json
import logging

from lenet_mnist.errors import LenetError
from lenet_mnist.files import write_json

log = logging.getLogger(__name__)

SUMMARY_KEYS = ["test_accuracy", "test_loss", "epochs"]


def summarize(params, metrics_paths, summary_path):
    """`metrics_paths` maps each run of params.yaml to its evaluate output."""
    runs = {}
    for run in params["runs"]:
        path = metrics_paths[run]
        try:
            metrics = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise LenetError(f"{path}: cannot read the metrics of run {run} ({e})") from None
        runs[run] = {key: metrics[key] for key in SUMMARY_KEYS}
    write_json(summary_path, {"runs": runs})
    log.info("%d runs -> %s", len(runs), summary_path)
