"""Stage `evaluate`: test loss and accuracy, per-class accuracy and the confusion matrix of one
(run, seed) checkpoint."""

import logging

import torch

from lenet_mnist.checkpoint import load_checkpoint
from lenet_mnist.data import N_CLASSES, read_part
from lenet_mnist.errors import LenetError
from lenet_mnist.files import write_json
from lenet_mnist.jobs import checked_job
from lenet_mnist.model import predict, score, to_tensors

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


def evaluate(params, run, seed, checkpoint_path, raw_dir, metrics_path):
    """The test metrics of one (run, seed) checkpoint, once it is known to be that run's and seed's."""
    checked_job(params, run, seed)
    model, ckpt = load_checkpoint(checkpoint_path)
    found = (ckpt["params"].get("run"), ckpt["params"].get("seed"))
    if found != (run, seed) or ckpt["architecture"] != params["models"][params["runs"][run]["model"]]:
        raise LenetError(
            f"{checkpoint_path}: the checkpoint of run {found[0]}, seed {found[1]}, architecture "
            f"{ckpt['architecture']}, not of run {run}, seed {seed} as params.yaml defines it"
        )
    images, labels = to_tensors(*read_part(raw_dir, "test"))
    metrics = metrics_of(predict(model, images, params["evaluate"]["batch_size"]), labels)
    metrics.update(run=run, seed=seed, epochs=ckpt["epoch"])  # what summarize checks it reads
    write_json(metrics_path, metrics)
    log.info(
        "%s: test accuracy %.4f, loss %.4f on %d images",
        checkpoint_path,
        metrics["test_accuracy"],
        metrics["test_loss"],
        metrics["n_test"],
    )
