"""Drawing, a library: the learning-curve facets that the plot and figures stages share, the
preview grid, and PNG files written atomically."""

import matplotlib

matplotlib.use("Agg")  # files only; no display on the machines that run the pipeline

import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from lenet_mnist.files import atomic_path  # noqa: E402


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


def curves_by_epoch(long, png_path, title, titles, y=1.02, **facets):
    """Per-epoch lines of `long` (long_history's rows), means over seeds with 95% CI bands, in
    seaborn's facets (`facets`: hue, row, col and their sizes), drawn to png_path."""
    grid = sns.relplot(data=long, x="epoch", y="value", kind="line", errorbar=("ci", 95), seed=0, **facets)
    grid.set_titles(**titles)
    for ax in grid.axes.flat:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    grid.figure.suptitle(title, y=y)
    save(grid.figure, png_path)


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
