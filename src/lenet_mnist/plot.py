"""Stage `plot`: a run's learning curves, loss and accuracy per epoch, train beside validation."""

import logging

import matplotlib

matplotlib.use("Agg")  # files only; no display on the machines that run the pipeline

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from lenet_mnist.files import atomic_path  # noqa: E402
from lenet_mnist.jobs import run_seeds  # noqa: E402
from lenet_mnist.records import read_history  # noqa: E402

log = logging.getLogger(__name__)


def long_history(history, ids=("epoch",)):
    """One row per (epoch, split, metric) and any other id columns: the shape seaborn's facets want."""
    long = history.melt(id_vars=list(ids), var_name="column", value_name="value")
    long[["split", "metric"]] = long["column"].str.split("_", n=1, expand=True)
    long["split"] = long["split"].map({"train": "train", "val": "validation"})
    return long


def save(fig, path, dpi=120):
    """A figure as a PNG file, written atomically; the figure is closed."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)


def plot_learning_curves(histories, png_path, title):
    """`histories` maps each seed to its history's rows; lines are means over seeds, bands 95% CIs."""
    history = pd.concat([pd.DataFrame(rows).assign(seed=seed) for seed, rows in histories.items()])
    grid = sns.relplot(
        data=long_history(history.drop(columns="seed")),
        x="epoch",
        y="value",
        hue="split",
        col="metric",
        kind="line",
        marker="o",
        errorbar=("ci", 95),
        seed=0,
        facet_kws={"sharey": False},
        height=3.5,
        aspect=1.2,
    )
    grid.set_titles(col_template="{col_name}")
    for ax in grid.axes.flat:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    grid.figure.suptitle(f"{title} (mean over {len(histories)} seeds, 95% CI)", y=1.03)
    save(grid.figure, png_path)
    log.info("%s, seeds %s -> %s", title, ", ".join(map(str, histories)), png_path)


def plot_preview(originals, views, png_path, title, max_views=5):
    """A grid: each row an image, first as it is, then its first views."""
    views = views[:max_views]
    fig, axes = plt.subplots(
        len(originals), 1 + len(views), figsize=(1.1 * (1 + len(views)), 1.1 * len(originals)), squeeze=False
    )
    for row, original in enumerate(originals):
        for col, image in enumerate([original, *views[:, row]]):
            ax = axes[row, col]
            ax.imshow(image, cmap="gray_r", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title("original" if col == 0 else f"view {col - 1}", fontsize=8)
    fig.suptitle(title, fontsize=9)
    save(fig, png_path, dpi=100)


def plot(params, run, history_dir, png_path):
    """The stage: the learning curves of every seed of `run`, from its histories in `history_dir`."""
    epochs = params["runs"][run]["epochs"]
    histories = {seed: read_history(history_dir / f"{seed}.csv", run, seed, epochs) for seed in run_seeds(params, run)}
    plot_learning_curves(histories, png_path, title=run)
