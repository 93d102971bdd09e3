"""Stage `prepare`: everything one run trains from, as files: its training images and its recipe.

The training set is the run's subset as V views of each image, materialised once from the
policy's seed (policy `none`: one view, the originals); training uses view (epoch - 1) mod V of
every image in each epoch, so each epoch sees every image once, in a different view. Materialised
views, unlike views drawn in the training loop, are versioned by DVC and cost the train jobs
nothing; a preview shows the first images beside their views. The recipe is the
run with its named model and optimizer entries resolved, so that the train jobs (one per seed)
depend on exactly what they read, and an edit to one model reruns only the runs that use it.
"""

import logging

import numpy as np

from lenet_mnist.augment import materialise
from lenet_mnist.data import load_indices, read_part, save_trainset
from lenet_mnist.errors import LenetError
from lenet_mnist.files import write_json
from lenet_mnist.plot import plot_preview

log = logging.getLogger(__name__)

PREVIEW_IMAGES = 8


def recipe(params, run_name):
    run = params["runs"][run_name]
    return {
        **run,
        "name": run_name,
        "architecture": params["models"][run["model"]],
        "optimizer_spec": params["optimizers"][run["optimizer"]],
    }


def prepare(params, run_name, raw_dir, train_split_path, subset_path, trainset_path, recipe_path, preview_path):
    run = params["runs"][run_name]
    subset = load_indices(subset_path)
    # A run must never train on validation images, whatever file it is given.
    if not np.isin(subset, load_indices(train_split_path)).all():
        raise LenetError(f"{subset_path}: holds indices outside the training split {train_split_path}")
    images, labels = read_part(raw_dir, "train")
    views = materialise(images[subset], params["policies"][run["policy"]])
    save_trainset(trainset_path, views, labels[subset])
    write_json(recipe_path, recipe(params, run_name))
    plot_preview(
        images[subset[:PREVIEW_IMAGES]],
        views[:, :PREVIEW_IMAGES],
        preview_path,
        title=f"run {run_name}: policy {run['policy']}",
    )
    log.info(
        "run %s: %d images x %d views (policy %s) -> %s, %s",
        run_name,
        len(subset),
        len(views),
        run["policy"],
        trainset_path,
        recipe_path,
    )
