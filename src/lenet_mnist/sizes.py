"""How many images a subset and a run hold: what params.yaml implies, before any data is read."""

import math

MNIST_TRAIN_IMAGES = 60_000


def subset_size(fraction, n):
    return math.floor(fraction * n + 0.5)


def run_size(params, run):
    """The images a run trains on: its fraction of what the split leaves of MNIST's training set."""
    return subset_size(params["runs"][run]["fraction"], MNIST_TRAIN_IMAGES - params["split"]["val_size"])
