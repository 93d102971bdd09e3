"""Stage `evaluate`: test loss and accuracy, per-class accuracy and the confusion matrix of each seed
of a run."""

import logging

import torch

from lenet_mnist.checkpoint import load_checkpoint
from lenet_mnist.data import N_CLASSES, read_part, to_tensors
from lenet_mnist.files import atomic_dir, write_json
from lenet_mnist.model import predict, score

log = logging.getLogger(__name__)


def confusion_matrix(labels, preds, n_classes=N_CLASSES):
    """Rows: true class; columns: predicted class."""
    flat = labels.cpu() * n_classes + preds.cpu()
    return torch.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def metrics_of(logits, labels):
    loss, accuracy, preds = score(logits, labels)
    confusion = confusion_matrix(labels, preds)
    per_class = confusion.diag().double() / confusion.sum(dim=1).clamp(min=1).double()
    return {
        "test_loss": loss,
        "test_accuracy": accuracy,
        "n_test": len(labels),
        "per_class_accuracy": {str(c): per_class[c].item() for c in range(N_CLASSES)},
        "confusion_matrix": confusion.tolist(),
    }


def evaluate(params, checkpoint_dir, raw_dir, metrics_dir):
    """The metrics of each seed's checkpoint of a run, written as a set: every checkpoint is read
    before any file is written, and the files appear together or not at all."""
    checkpoints = {seed: load_checkpoint(checkpoint_dir / f"{seed}.pt") for seed in params["seeds"]}
    images, labels = to_tensors(*read_part(raw_dir, "test"))
    with atomic_dir(metrics_dir) as written:
        for seed, (model, ckpt) in checkpoints.items():
            metrics = metrics_of(predict(model, images, params["evaluate"]["batch_size"]), labels)
            metrics["epochs"] = ckpt["epoch"]
            write_json(written / f"{seed}.json", metrics)
            log.info(
                "%s/%s.pt: test accuracy %.4f, loss %.4f on %d images",
                checkpoint_dir,
                seed,
                metrics["test_accuracy"],
                metrics["test_loss"],
                metrics["n_test"],
            )
