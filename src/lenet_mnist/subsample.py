"""Stage `subsample`: a seed's fixed, class-stratified subset of the training split.

The notebook drew its "20%" anew, with replacement, every epoch (so 15 epochs saw about 95% of the
distinct images); here a subset is a fixed list of indices, and training sees exactly those. Each
seed draws its own subsets from its "subset" stream, nested across fractions (a seed's 20% lies
inside its 50%), so that the spread over seeds includes the spread over data draws.
"""

import json
import logging

import numpy as np

from lenet_mnist.data import check_indices, check_unseen, load_indices, read_labels
from lenet_mnist.errors import LenetError
from lenet_mnist.files import atomic_path
from lenet_mnist.jobs import fraction_of
from lenet_mnist.sizes import subset_size
from lenet_mnist.streams import numpy_stream

log = logging.getLogger(__name__)


def stratified_order(labels, rng):
    """An order of positions whose every prefix is stratified by class.

    Each class is shuffled, and its r-th image gets the key (r + 1/2) / n_class; sorting by key
    interleaves the classes in proportion (Sainte-Lague's divisor method). Every subset is a
    prefix of the same order, so smaller subsets lie inside larger ones by construction.
    """
    keys = np.empty(len(labels))
    for c in np.unique(labels):
        positions = np.flatnonzero(labels == c)
        keys[positions] = (rng.permutation(len(positions)) + 0.5) / len(positions)
    return np.lexsort((rng.random(len(labels)), keys))


def check_stratified(chosen_labels, all_labels):
    """Each class's count must be within 1 of its exact share."""
    share = len(chosen_labels) / len(all_labels)
    for c in np.unique(all_labels):
        exact = share * np.count_nonzero(all_labels == c)
        got = np.count_nonzero(chosen_labels == c)
        if abs(got - exact) > 1:
            raise LenetError(f"class {c}: {got} images, but its exact share is {exact:.2f}")


def subsample_indices(train_indices, labels, fraction, seed):
    """Sorted indices (into the 60k) of the `fraction` subset of `train_indices`."""
    train_labels = labels[train_indices]
    order = stratified_order(train_labels, numpy_stream(seed, "subset"))
    chosen = order[: subset_size(fraction, len(train_indices))]
    check_stratified(train_labels[chosen], train_labels)
    return np.sort(train_indices[chosen])


def save_subset(path, indices, key):
    """`key`: the (fraction, seed) the subset was drawn for, which prepare checks. Subsets of one
    fraction differ by it even where their indices agree (every seed's 100%): DVC's hardlinked
    cache would give equal files one inode, and so one time for Snakemake."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, indices=np.asarray(indices, dtype=np.int64), key=np.array(json.dumps(key, sort_keys=True)))


def load_subset(path, key):
    """The indices of the subset drawn for `key`, or an error naming what it was drawn for."""
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError("an array, not an archive")
        with data:
            indices, found = data["indices"], json.loads(str(data["key"]))
    except (OSError, ValueError, KeyError) as e:
        raise LenetError(f"{path}: not a subset written by lenet-mnist subsample ({e})") from None
    if found != key:
        raise LenetError(f"{path}: drawn for {found}, not for {key}; rebuild it with lenet-mnist subsample")
    check_indices(path, indices)
    return indices


def subsample(params, fraction, seed, raw_dir, train_path, val_path, out_path):
    """The stage: `fraction` as subsample.fractions spells it."""
    fraction = fraction_of(params, fraction)
    train = load_indices(train_path)
    check_unseen(train, train_path, load_indices(val_path), val_path)  # whatever split file it is given
    subset = subsample_indices(train, read_labels(raw_dir, "train"), fraction, seed)
    save_subset(out_path, subset, {"fraction": str(fraction), "seed": seed})
    log.info("subset %s, seed %d: %d of %d training images -> %s", fraction, seed, len(subset), len(train), out_path)
