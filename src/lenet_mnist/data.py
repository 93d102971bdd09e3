"""The raw MNIST files as arrays and tensors, and the files the data stages write: index files,
a run's training set and its recipe."""

import json
from pathlib import Path

import numpy as np
import torch

from lenet_mnist.errors import LenetError
from lenet_mnist.files import atomic_path
from lenet_mnist.idx import read_idx

PARTS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),  # the official 60k
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),  # the official 10k
}


def read_labels(raw_dir, part):
    return read_idx(Path(raw_dir) / PARTS[part][1])


def read_part(raw_dir, part):
    """(images N x 28 x 28 uint8, labels N uint8) of the official train or test part."""
    images, labels = (read_idx(Path(raw_dir) / name) for name in PARTS[part])
    if images.ndim != 3 or images.shape[0] != labels.shape[0]:
        raise LenetError(f"{raw_dir}: {PARTS[part][0]} has shape {images.shape}, labels {labels.shape}")
    return images, labels


def pixels(images):
    """Float images in [0, 1] with a channel axis (what the notebook's ToTensor gave), from uint8 N x 28 x 28."""
    return images.unsqueeze(1).float().div_(255)


def to_tensors(images, labels, device="cpu"):
    """(pixels, int64 labels) on the device, from uint8 numpy arrays."""
    x = torch.from_numpy(np.require(images, requirements=["C", "W"])).to(device)
    return pixels(x), torch.from_numpy(labels.astype(np.int64)).to(device)


def save_indices(path, indices):
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, np.asarray(indices, dtype=np.int64))


def load_indices(path):
    try:
        indices = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise LenetError(f"{path}: not an index file written by lenet-mnist ({e})") from None
    if indices.dtype != np.int64 or indices.ndim != 1:
        raise LenetError(f"{path}: expected a 1-d int64 array, found {indices.dtype} of shape {indices.shape}")
    return indices


def save_trainset(path, views, labels):
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, views=views, labels=labels)


def load_trainset(path):
    """(views V x N x 28 x 28 uint8, labels N uint8) written by save_trainset."""
    try:
        with np.load(path, allow_pickle=False) as data:
            views, labels = data["views"], data["labels"]
    except (OSError, ValueError, KeyError) as e:
        raise LenetError(f"{path}: not a training set written by lenet-mnist prepare ({e})") from None
    if views.dtype != np.uint8 or views.ndim != 4 or views.shape[1] != len(labels):
        raise LenetError(f"{path}: views of shape {views.shape} do not match {len(labels)} labels")
    return views, labels


def load_recipe(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise LenetError(f"{path}: not a run recipe written by lenet-mnist prepare ({e})") from None
