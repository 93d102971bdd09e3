"""Stage `train`: one run of params.yaml with each of its seeds; per seed a per-epoch history and a
final checkpoint."""

import csv
import logging
import os
import sys

import torch
import torch.nn.functional as F
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from lenet_mnist.allocator import reuse_freed_memory
from lenet_mnist.checkpoint import load_tensors, save_checkpoint, save_tensors
from lenet_mnist.data import N_CLASSES, load_indices, load_recipe, load_trainset, read_part, to_tensors, to_unit
from lenet_mnist.errors import LenetError
from lenet_mnist.files import atomic_dir, atomic_path, digest_of
from lenet_mnist.model import build_model, predict, score
from lenet_mnist.stacked import stack, unstack

log = logging.getLogger(__name__)

HISTORY_COLUMNS = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy"]


def resolve_device(name):
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def make_optimizer(spec, parameters, epochs):
    """The optimizer, and its learning-rate schedule, stepped once after each epoch."""
    if spec["name"] == "sgd":
        optimizer = torch.optim.SGD(parameters, lr=spec["lr"], momentum=spec["momentum"])
    else:
        optimizer = torch.optim.Adam(parameters, lr=spec["lr"])
    if spec["schedule"] == "cosine":  # from lr down to 0 along half a cosine over the run's epochs
        return optimizer, torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    return optimizer, torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)


def train_epoch(model, optimizer, images, labels, batch_size, generators, progress):
    """One pass of each of n models over its own fresh shuffle (generator m draws model m's order).
    `images` are uint8 (N x 28 x 28); each batch is gathered as bytes, a quarter of the memory
    traffic of floats, and then made float (the same numbers as gathering floats). `model` maps
    (batch, n, 28, 28) to n x batch logits: n models stacked as one (stacked.py), or one model when
    n is 1. Returns per model the sample-weighted mean loss and accuracy, and the first step (from
    1) whose loss was not finite, or 0."""
    model.train()
    n, device = len(generators), images.device
    orders = torch.stack([torch.randperm(len(labels), generator=g) for g in generators]).to(device)
    loss_sum = torch.zeros(n, device=device)
    correct = torch.zeros(n, dtype=torch.long, device=device)
    # Kept on the device, like the sums: a .item() per batch would synchronise with a GPU.
    first_bad = torch.zeros(n, dtype=torch.long, device=device)
    for step, start in enumerate(range(0, len(labels), batch_size), start=1):
        batch = orders[:, start : start + batch_size]  # n x b
        # b x n x 28 x 28, model m's images in channel m, channels-last as the convolutions compute;
        # index_select copies whole rows, where indexing with a matrix copies byte by byte.
        rows = images.index_select(0, batch.t().flatten()).view(-1, n, *images.shape[1:])
        x, y = to_unit(rows, torch.channels_last), labels[batch]
        logits = model(x).view(n, -1, N_CLASSES)
        losses = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view_as(y).mean(dim=1)
        optimizer.zero_grad(set_to_none=True)
        # Model m's parameters reach only its own loss: the sum's gradient is each one's own.
        losses.sum().backward()
        optimizer.step()
        loss_sum += losses.detach() * y.shape[1]
        correct += (logits.argmax(dim=2) == y).sum(dim=1)
        first_bad = torch.where((first_bad == 0) & ~torch.isfinite(losses.detach()), step, first_bad)
        progress.update(1)
    return (loss_sum / len(labels)).tolist(), (correct / len(labels)).tolist(), first_bad.tolist()


def validate(model, images, labels, n, batch_size):
    """(loss, accuracy) of each of the n stacked models on the same images."""
    logits = predict(model, images.expand(-1, n, -1, -1), batch_size)  # n x images x classes
    return [score(logits[m], labels)[:2] for m in range(n)]


def resume_path(checkpoint_dir):
    """Where a training job keeps its state after each epoch: beside its checkpoints' directory,
    which Snakemake and DVC clear before they run the job."""
    return checkpoint_dir.with_name(checkpoint_dir.name + ".resume")


def save_state(path, identity, epoch, model, optimizer, schedule, generators, histories):
    save_tensors(
        path,
        {
            "identity": identity,
            "epoch": epoch,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(),
            "generators": [g.get_state() for g in generators],
            "histories": histories,
        },
    )


def load_state(path, identity):
    """The state this same job saved after its last completed epoch, or None."""
    if not path.exists():
        return None
    try:
        state = load_tensors(path, "training state")
    except LenetError as e:
        log.warning("%s; starting from epoch 1", e)
        return None
    if not isinstance(state, dict) or state.get("identity") != identity:
        log.warning("%s: saved by another job or configuration, starting from epoch 1", path)
        return None
    return state


def write_history(path, rows):
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=HISTORY_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def set_up_process(threads):
    """A training process: its torch threads, freed memory kept for reuse, deterministic kernels."""
    torch.set_num_threads(threads)
    reuse_freed_memory()
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS, when on a GPU
    torch.use_deterministic_algorithms(True)


def train(params, recipe_path, trainset_path, raw_dir, val_split_path, checkpoint_dir, history_dir, threads):
    run, seeds = load_recipe(recipe_path), params["seeds"]
    run_name, architecture = run["name"], run["architecture"]
    set_up_process(threads)
    device = resolve_device(params["compute"]["device"])

    views, labels = load_trainset(trainset_path)
    views = torch.from_numpy(views).to(device)  # kept as bytes; each batch is made float
    train_y = torch.from_numpy(labels.astype("int64")).to(device)
    images, all_labels = read_part(raw_dir, "train")
    val = load_indices(val_split_path)
    val_x, val_y = to_tensors(images[val], all_labels[val], device)

    # Every seed of the run trains at once, as one stacked model: each seed starts from its own
    # initial weights and draws its own data order, as if trained alone, and each step of the
    # stack is a step of each model on its own loss (stacked.py; `lenet-mnist bench` measures what
    # stacking gains).
    singles = []
    for seed in seeds:
        torch.manual_seed(seed)  # the initial weights
        singles.append(build_model(architecture))
    model = stack(singles).to(device)
    optimizer, schedule = make_optimizer(run["optimizer_spec"], model.parameters(), run["epochs"])
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]  # the data orders
    eval_batch = params["evaluate"]["batch_size"]
    batches = -(-len(train_y) // run["batch_size"])

    # A job killed mid-epoch resumes after its last completed epoch, with the same weights,
    # optimizer state and data orders, so that it ends as an uninterrupted run would.
    resume = resume_path(checkpoint_dir)
    identity = {
        "recipe": run,
        "seeds": seeds,
        "threads": threads,
        "device": device.type,
        "evaluate": params["evaluate"],
        "trainset": digest_of(trainset_path),
        "val_split": digest_of(val_split_path),
    }
    state = load_state(resume, identity)
    histories, first = [[] for _ in seeds], 1
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        for generator, saved in zip(generators, state["generators"]):
            generator.set_state(saved)
        histories, first = state["histories"], state["epoch"] + 1
        log.info("run %s: resuming after epoch %d (%s)", run_name, state["epoch"], resume)
    log.info(
        "run %s, seeds %s: %s, %s on %d images x %d views, %d epochs of %d batches, on %s with %d threads",
        run_name,
        ", ".join(map(str, seeds)),
        run["model"],
        run["optimizer"],
        len(train_y),
        len(views),
        run["epochs"],
        batches,
        device,
        threads,
    )

    bar = tqdm(
        total=run["epochs"] * batches,
        initial=(first - 1) * batches,
        unit="batch",
        disable=not sys.stderr.isatty(),
        leave=False,
    )
    with logging_redirect_tqdm(), bar:  # on a terminal, a bar; in a log file, a line per epoch and seed
        for epoch in range(first, run["epochs"] + 1):
            train_loss, train_acc, bad_steps = train_epoch(
                model, optimizer, views[(epoch - 1) % len(views)], train_y, run["batch_size"], generators, bar
            )
            for seed, bad_step in zip(seeds, bad_steps):
                if bad_step:
                    raise LenetError(
                        f"run {run_name} seed {seed}: the loss is not finite at epoch {epoch}, step "
                        f"{bad_step} of {batches}, with learning rate {optimizer.param_groups[0]['lr']}: "
                        f"training diverged (a smaller optimizers.{run['optimizer']}.lr may help)"
                    )
            scores = validate(model, val_x, val_y, len(seeds), eval_batch)
            for m, (seed, (val_loss, val_acc)) in enumerate(zip(seeds, scores)):
                histories[m].append(dict(zip(HISTORY_COLUMNS, [epoch, train_loss[m], train_acc[m], val_loss, val_acc])))
                log.info(
                    "run %s seed %d epoch %d/%d: train loss %.4f acc %.4f | val loss %.4f acc %.4f",
                    run_name,
                    seed,
                    epoch,
                    run["epochs"],
                    train_loss[m],
                    train_acc[m],
                    val_loss,
                    val_acc,
                )
            schedule.step()
            if epoch < run["epochs"]:
                save_state(resume, identity, epoch, model, optimizer, schedule, generators, histories)

    unstack(model, singles)
    # Each seed's checkpoint and history, written as two sets: complete or absent.
    with atomic_dir(checkpoint_dir) as checkpoints, atomic_dir(history_dir) as histories_dir:
        for seed, single, history in zip(seeds, singles, histories):
            write_history(histories_dir / f"{seed}.csv", history)
            save_checkpoint(checkpoints / f"{seed}.pt", single, architecture, {**run, "seed": seed}, run["epochs"])
    resume.unlink(missing_ok=True)
