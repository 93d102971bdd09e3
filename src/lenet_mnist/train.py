"""Stage `train`: one run of params.yaml with one seed, a per-epoch history and a final checkpoint."""

import csv
import logging
import os
import sys

import torch
import torch.nn.functional as F
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from lenet_mnist.checkpoint import save_checkpoint
from lenet_mnist.data import load_indices, load_recipe, load_trainset, pixels, read_part, to_tensors
from lenet_mnist.evaluate import predict, score
from lenet_mnist.files import atomic_path
from lenet_mnist.model import build_model

log = logging.getLogger(__name__)

HISTORY_COLUMNS = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy"]


def resolve_device(name):
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def make_optimizer(spec, parameters):
    if spec["name"] == "sgd":
        return torch.optim.SGD(parameters, lr=spec["lr"], momentum=spec["momentum"])
    return torch.optim.Adam(parameters, lr=spec["lr"])


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


def train(params, seed, recipe_path, trainset_path, raw_dir, val_split_path, checkpoint_path, history_path, threads):
    run = load_recipe(recipe_path)
    run_name, architecture = run["name"], run["architecture"]
    torch.set_num_threads(threads)
    torch.manual_seed(seed)  # the initial weights
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS, when on a GPU
    torch.use_deterministic_algorithms(True)
    device = resolve_device(params["compute"]["device"])

    views, labels = load_trainset(trainset_path)
    views = torch.from_numpy(views).to(device)  # kept as bytes; one view is made float per epoch
    train_y = torch.from_numpy(labels.astype("int64")).to(device)
    images, all_labels = read_part(raw_dir, "train")
    val = load_indices(val_split_path)
    val_x, val_y = to_tensors(images[val], all_labels[val], device)

    model = build_model(architecture).to(device)
    optimizer = make_optimizer(run["optimizer_spec"], model.parameters())
    generator = torch.Generator().manual_seed(seed)  # the data order, apart from the weights
    eval_batch = params["evaluate"]["batch_size"]
    batches = -(-len(train_y) // run["batch_size"])
    log.info("run %s seed %d: %s, %s on %d images x %d views, %d epochs of %d batches, on %s with %d threads",
             run_name, seed, run["model"], run["optimizer"], len(train_y), len(views), run["epochs"], batches,
             device, threads)

    history = []
    bar = tqdm(total=run["epochs"] * batches, unit="batch", disable=not sys.stderr.isatty(), leave=False)
    with logging_redirect_tqdm(), bar:  # on a terminal, a bar; in a log file, a line per epoch
        for epoch in range(1, run["epochs"] + 1):
            train_x = pixels(views[(epoch - 1) % len(views)])
            train_loss, train_acc = train_epoch(model, optimizer, train_x, train_y, run["batch_size"], generator, bar)
            val_loss, val_acc, _ = score(predict(model, val_x, eval_batch), val_y)
            history.append(dict(zip(HISTORY_COLUMNS, [epoch, train_loss, train_acc, val_loss, val_acc])))
            log.info("run %s seed %d epoch %d/%d: train loss %.4f acc %.4f | val loss %.4f acc %.4f",
                     run_name, seed, epoch, run["epochs"], train_loss, train_acc, val_loss, val_acc)

    write_history(history_path, history)
    save_checkpoint(checkpoint_path, model.cpu(), architecture, {**run, "seed": seed}, run["epochs"])
