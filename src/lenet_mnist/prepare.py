"""Stage `prepare`: the training set of one (policy, fraction, seed), as a file.

The training set is the seed's subset as V views of each image, materialised once from the seed's
"views" stream (policy `none`: one view, the originals); training uses view (epoch - 1) mod V of
every image in each epoch, so each epoch sees every image once, in a different view. Materialised
views, unlike views drawn in the training loop, are versioned by DVC and cost the train jobs
nothing. A set is keyed by what it depends on, so runs that differ only in model or optimizer
train from the same file.
"""

import logging

import numpy as np

from lenet_mnist.augment import materialise
from lenet_mnist.data import load_indices, read_part, save_trainset
from lenet_mnist.errors import LenetError
from lenet_mnist.streams import torch_stream

log = logging.getLogger(__name__)


def prepare(params, policy, fraction, seed, raw_dir, train_split_path, subset_path, trainset_path):
    subset = load_indices(subset_path)
    # A run must never train on validation images, whatever file it is given.
    if not np.isin(subset, load_indices(train_split_path)).all():
        raise LenetError(f"{subset_path}: holds indices outside the training split {train_split_path}")
    images, labels = read_part(raw_dir, "train")
    views = materialise(images[subset], params["policies"][policy], torch_stream(seed, "views"))
    save_trainset(trainset_path, views, labels[subset], subset, {"policy": policy, "fraction": fraction, "seed": seed})
    log.info(
        "policy %s, subset %s, seed %d: %d images x %d views -> %s",
        policy,
        fraction,
        seed,
        len(subset),
        len(views),
        trainset_path,
    )
