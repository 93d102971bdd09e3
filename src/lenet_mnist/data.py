"""The raw MNIST files as numpy arrays, and the files the data stages write: index files and
prepared training sets."""

import json
from pathlib import Path

import numpy as np

from lenet_mnist.errors import LenetError
from lenet_mnist.files import atomic_path
from lenet_mnist.idx import read_idx
from lenet_mnist.sizes import MNIST_TRAIN_IMAGES

PARTS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),  # the official 60k
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),  # the official 10k
}


N_CLASSES = 10
SIDE = 28


def raw_file(raw_dir, name):
    """A raw file's path, once its directory is known to exist (else: run the download stage)."""
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        problem = "not a directory" if raw_dir.exists() else "no such directory"
        raise LenetError(
            f"{raw_dir}: {problem} (run the download stage first: snakemake --cores 1 {raw_dir}, or dvc repro download)"
        )
    return raw_dir / name


def read_labels(raw_dir, part):
    path = raw_file(raw_dir, PARTS[part][1])
    labels = read_idx(path)
    if labels.ndim != 1:
        raise LenetError(f"{path}: labels of shape {labels.shape}, expected one dimension")
    if labels.size and labels.max() >= N_CLASSES:
        raise LenetError(f"{path}: label {labels.max()} at index {labels.argmax()} (allowed: 0 to {N_CLASSES - 1})")
    return labels


def read_part(raw_dir, part):
    """(images N x 28 x 28 uint8, labels N uint8) of the official train or test part, checked for
    what the stages rely on: the shapes, equal counts and labels 0-9."""
    path = raw_file(raw_dir, PARTS[part][0])
    images, labels = read_idx(path), read_labels(raw_dir, part)
    if images.ndim != 3 or images.shape[1:] != (SIDE, SIDE):
        raise LenetError(f"{path}: images of shape {images.shape}, expected N x {SIDE} x {SIDE}")
    if len(images) != len(labels):
        raise LenetError(f"{path}: {len(images)} images but {len(labels)} labels in {PARTS[part][1]}")
    return images, labels


def save_indices(path, indices):
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, np.asarray(indices, dtype=np.int64))


def load_indices(path):
    try:
        indices = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise LenetError(f"{path}: not an index file written by lenet-mnist ({e})") from None
    check_indices(path, indices)
    return indices


def check_indices(path, indices):
    """Indices into MNIST's training part mean distinct images: a 1-d int64 array, each in range,
    none twice."""
    if indices.dtype != np.int64 or indices.ndim != 1:
        raise LenetError(f"{path}: expected a 1-d int64 array, found {indices.dtype} of shape {indices.shape}")
    if len(indices) and not 0 <= indices.min() <= indices.max() < MNIST_TRAIN_IMAGES:
        raise LenetError(
            f"{path}: holds indices from {indices.min()} to {indices.max()} (allowed: 0 to {MNIST_TRAIN_IMAGES - 1})"
        )
    if len(np.unique(indices)) != len(indices):
        raise LenetError(f"{path}: holds {len(indices) - len(np.unique(indices))} repeated indices (each image once)")


def save_trainset(path, views, labels, indices, key):
    """`key`: the (policy, fraction, seed) the set was prepared for, which train checks."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, views=views, labels=labels, indices=indices, key=np.array(json.dumps(key, sort_keys=True)))


def read_trainset(path):
    """(views V x N x 28 x 28 uint8, labels N uint8, indices N into the 60k, key) of a prepared set."""
    try:
        with np.load(path, allow_pickle=False) as data:
            views, labels, indices, key = data["views"], data["labels"], data["indices"], json.loads(str(data["key"]))
    except (OSError, ValueError, KeyError) as e:
        raise LenetError(f"{path}: not a training set written by lenet-mnist prepare ({e})") from None
    if views.dtype != np.uint8 or views.ndim != 4 or not views.shape[1] == len(labels) == len(indices):
        raise LenetError(f"{path}: views of shape {views.shape} do not match {len(labels)} labels")
    check_indices(path, indices)
    return views, labels, indices, key


def load_trainset(path, key):
    """(views, labels, indices) of the set prepared for `key`, or an error naming what it was
    prepared for."""
    views, labels, indices, found = read_trainset(path)
    if found != key:
        raise LenetError(f"{path}: prepared for {found}, not for {key}")
    return views, labels, indices


def check_unseen(indices, path, val, val_path):
    """Validation accuracy must be of unseen images: `indices` (of `path`) may hold none of the
    validation split's, `val` (of `val_path`)."""
    if shared := len(np.intersect1d(indices, val)):
        raise LenetError(f"{path}: holds {shared} images of the validation split {val_path}")
