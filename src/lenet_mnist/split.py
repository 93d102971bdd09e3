"""Stage `split`: the midterm's 50k/10k train/validation split of the official 60k."""

import logging

import numpy as np
import torch

from lenet_mnist.data import read_labels, save_indices
from lenet_mnist.files import atomic_set

log = logging.getLogger(__name__)


def split_indices(n, val_size, seed):
    """Exactly the notebook's `random_split(train_all, [50000, 10000], Generator().manual_seed(0))`.

    random_split only looks at the dataset's length, so a range stands in for the images.
    """
    generator = torch.Generator().manual_seed(seed)
    train, val = torch.utils.data.random_split(range(n), [n - val_size, val_size], generator=generator)
    return np.asarray(train.indices, dtype=np.int64), np.asarray(val.indices, dtype=np.int64)


def split(params, raw_dir, train_path, val_path):
    n = len(read_labels(raw_dir, "train"))
    train, val = split_indices(n, params["split"]["val_size"], params["split"]["seed"])
    with atomic_set(train_path, val_path) as (train_tmp, val_tmp):  # both or neither
        save_indices(train_tmp, train)
        save_indices(val_tmp, val)
    log.info("split %d images into %d train (%s) and %d validation (%s)", n, len(train), train_path, len(val), val_path)
