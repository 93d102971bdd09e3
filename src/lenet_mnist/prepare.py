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
from lenet_mnist.jobs import checked_policy, fraction_of
from lenet_mnist.streams import torch_stream
from lenet_mnist.subsample import load_subset, subsample_indices

log = logging.getLogger(__name__)


def prepare(params, policy, fraction, seed, raw_dir, train_split_path, subset_path, trainset_path):
    """The stage: `fraction` as subsample.fractions spells it."""
    checked_policy(params, policy)
    fraction_of(params, fraction)
    subset = load_subset(subset_path, {"fraction": fraction, "seed": seed})
    images, labels = read_part(raw_dir, "train")
    # Drawn again too (it takes milliseconds): a file edited by hand, or drawn from another training
    # split, would train under this key.
    if not np.array_equal(subset, subsample_indices(load_indices(train_split_path), labels, float(fraction), seed)):
        raise LenetError(
            f"{subset_path}: not the subset of fraction {fraction} and seed {seed} of {train_split_path} (edited, "
            "or drawn from another split); rebuild it with lenet-mnist subsample"
        )
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
