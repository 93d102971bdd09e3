"""Stage `train`: one run of params.yaml, with a per-epoch history and a final checkpoint."""

import csv
import logging
import os
import sys

import torch
import torch.nn.functional as F
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from lenet_mnist.checkpoint import save_checkpoint
from lenet_mnist.data import load_indices, read_part, to_tensors
from lenet_mnist.errors import LenetError
from lenet_mnist.evaluate import predict, score
from lenet_mnist.files import atomic_path
from lenet_mnist.model import build_model

log = logging.getLogger(__name__)

HISTORY_COLUMNS = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy"]


def resolve_device(name):
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


OPTIMIZERS = {
    "sgd": lambda parameters, run: torch.optim.SGD(parameters, lr=run["lr"]),  # vanilla, as in the seed
}


def train_epoch(model, optimizer, images, labels, batch_size, generator, progress):
    """One pass over a fresh shuffle; returns the sample-weighted mean loss and accuracy."""
    model.train()
    order = torch.randperm(len(labels), generator=generator).to(images.device)
    loss_sum = torch.zeros((), device=images.device)
    correct = torch.zeros((), dtype=torch.long, device=images.device)
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        x, y = images[batch], labels[batch]
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        # Accumulated on the device: a .item() per batch would synchronise with a GPU.
        loss_sum += loss.detach() * len(y)
        correct += (logits.argmax(dim=1) == y).sum()
        progress.update(1)
    return loss_sum.item() / len(labels), correct.item() / len(labels)


def write_history(path, rows):
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=HISTORY_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def train(params, run_name, raw_dir, train_split_path, val_split_path, subset_path, checkpoint_path, history_path,
          threads):
    run = params["runs"][run_name]
    torch.set_num_threads(threads)
    torch.manual_seed(run["seed"])  # the initial weights
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS, when on a GPU
    torch.use_deterministic_algorithms(True)
    device = resolve_device(params["compute"]["device"])

    images, labels = read_part(raw_dir, "train")
    subset, val = load_indices(subset_path), load_indices(val_split_path)
    # The subset must come from the training split: a run must never see validation images.
    if not set(subset.tolist()) <= set(load_indices(train_split_path).tolist()):
        raise LenetError(f"{subset_path}: holds indices outside the training split {train_split_path}")
    train_x, train_y = to_tensors(images[subset], labels[subset], device)
    val_x, val_y = to_tensors(images[val], labels[val], device)

    model = build_model(run["model"]).to(device)
    optimizer = OPTIMIZERS[run["optimizer"]](model.parameters(), run)
    generator = torch.Generator().manual_seed(run["seed"])  # the data order, apart from the weights
    eval_batch = params["evaluate"]["batch_size"]
    batches = -(-len(train_y) // run["batch_size"])
    log.info("run %s: %s on %d images (%s), %d epochs of %d batches, on %s with %d threads",
             run_name, run["model"], len(train_y), subset_path, run["epochs"], batches, device, threads)

    history = []
    bar = tqdm(total=run["epochs"] * batches, unit="batch", disable=not sys.stderr.isatty(), leave=False)
    with logging_redirect_tqdm(), bar:  # on a terminal, a bar; in a log file, a line per epoch
        for epoch in range(1, run["epochs"] + 1):
            train_loss, train_acc = train_epoch(model, optimizer, train_x, train_y, run["batch_size"], generator, bar)
            val_loss, val_acc, _ = score(predict(model, val_x, eval_batch), val_y)
            history.append(dict(zip(HISTORY_COLUMNS, [epoch, train_loss, train_acc, val_loss, val_acc])))
            log.info("run %s epoch %d/%d: train loss %.4f acc %.4f | val loss %.4f acc %.4f",
                     run_name, epoch, run["epochs"], train_loss, train_acc, val_loss, val_acc)

    write_history(history_path, history)
    save_checkpoint(checkpoint_path, model.cpu(), run["model"], run, run["epochs"])
