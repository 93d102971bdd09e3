"""Stage `plot`: a run's learning curves, loss and accuracy per epoch, train beside validation."""

import logging

import pandas as pd

from lenet_mnist.charts import curves_by_epoch, long_history
from lenet_mnist.jobs import checked_run, run_seeds
from lenet_mnist.records import read_history

log = logging.getLogger(__name__)


def plot(params, run, history_dir, png_path):
    """The stage: the learning curves of every seed of `run`, from its histories in `history_dir`."""
    checked_run(params, run)
    epochs = params["runs"][run]["epochs"]
    histories = {seed: read_history(history_dir / f"{seed}.csv", run, seed, epochs) for seed in run_seeds(params, run)}
    history = pd.concat([pd.DataFrame(rows).assign(seed=seed) for seed, rows in histories.items()])
    curves_by_epoch(
        long_history(history.drop(columns="seed")),
        png_path,
        f"{run} (mean over {len(histories)} seeds, 95% CI)",
        {"col_template": "{col_name}"},
        y=1.03,
        hue="split",
        col="metric",
        marker="o",
        facet_kws={"sharey": False},
        height=3.5,
        aspect=1.2,
    )
    log.info("%s, seeds %s -> %s", run, ", ".join(map(str, histories)), png_path)
