"""Stage `train`: one run of params.yaml with one seed, a plain loop over one nn.Module; a per-epoch
history and a final checkpoint."""

import logging
import os
import sys

import torch
import torch.nn.functional as F
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from lenet_mnist.allocator import reuse_freed_memory
from lenet_mnist.checkpoint import load_tensors, save_checkpoint, save_tensors
from lenet_mnist.data import check_unseen, load_indices, load_trainset, read_part
from lenet_mnist.devices import check_device, resolve_device
from lenet_mnist.errors import LenetError
from lenet_mnist.files import atomic_set, digest_of
from lenet_mnist.jobs import checked_job
from lenet_mnist.model import build_model, predict, score, to_tensors, to_unit
from lenet_mnist.records import HISTORY_COLUMNS, write_history
from lenet_mnist.streams import stream_seed, torch_stream

log = logging.getLogger(__name__)

# Images per validation pass after each epoch: a constant, so that training reads nothing of the
# evaluate section (whose batch size then reruns evaluation alone).
VALIDATION_BATCH = 1000


def make_optimizer(spec, parameters, epochs):
    """The optimizer, and its learning-rate schedule, stepped once after each epoch."""
    if spec["name"] == "sgd":
        optimizer = torch.optim.SGD(parameters, lr=spec["lr"], momentum=spec["momentum"])
    else:
        optimizer = torch.optim.Adam(parameters, lr=spec["lr"])
    if spec["schedule"] == "cosine":  # from lr down to 0 along half a cosine over the run's epochs
        return optimizer, torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    return optimizer, torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)


def train_epoch(model, optimizer, images, labels, batch_size, generator, progress, layout=torch.channels_last):
    """One pass over a fresh shuffle drawn from `generator` (the seed's "order" stream). `images`
    are uint8 (N x 28 x 28); each batch is gathered as bytes, a quarter of the memory traffic of
    floats, and then made float (the same numbers as gathering floats). Returns the
    sample-weighted mean loss and accuracy, and the first step (from 1) whose loss was not finite,
    or 0."""
    model.train()
    device = images.device
    order = torch.randperm(len(labels), generator=generator).to(device)
    # Kept on the device: a .item() per batch would synchronise with a GPU.
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    first_bad = torch.zeros((), dtype=torch.long, device=device)
    for step, start in enumerate(range(0, len(labels), batch_size), start=1):
        batch = order[start : start + batch_size]
        # index_select copies whole rows; channels-last is the layout the convolutions compute in.
        x = to_unit(images.index_select(0, batch).unsqueeze(1), layout)
        y = labels[batch]
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach() * len(y)
        correct += (logits.argmax(dim=1) == y).sum()
        first_bad = torch.where((first_bad == 0) & ~torch.isfinite(loss.detach()), step, first_bad)
        progress.update(1)
    return (loss_sum / len(labels)).item(), (correct / len(labels)).item(), int(first_bad)


def resume_path(checkpoint_path):
    """Where a training job keeps its state after each epoch: beside its checkpoint, which Snakemake
    removes before it runs the job."""
    return checkpoint_path.with_name(checkpoint_path.name + ".resume")


def save_state(path, identity, epoch, model, optimizer, schedule, generator, history):
    save_tensors(
        path,
        {
            "identity": identity,
            "epoch": epoch,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(),
            "generator": generator.get_state(),
            "history": history,
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


def set_up_process(threads, reuse_memory=True):
    """A training process: its torch threads, freed memory kept for reuse, deterministic kernels."""
    torch.set_num_threads(threads)
    if reuse_memory:
        reuse_freed_memory()
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS, when on a GPU
    torch.use_deterministic_algorithms(True)


def train(params, run_name, seed, trainset_path, raw_dir, val_split_path, checkpoint_path, history_path, threads):
    checked_job(params, run_name, seed)
    check_device(params)  # one line, not a traceback from torch
    run = params["runs"][run_name]
    architecture = params["models"][run["model"]]
    set_up_process(threads)
    device = resolve_device(params["compute"]["device"])

    key = {"policy": run["policy"], "fraction": str(run["fraction"]), "seed": seed}
    views, labels, indices = load_trainset(trainset_path, key)
    views = torch.from_numpy(views).to(device)  # kept as bytes; each batch is made float
    train_y = torch.from_numpy(labels.astype("int64")).to(device)
    images, all_labels = read_part(raw_dir, "train")
    val = load_indices(val_split_path)
    check_unseen(indices, trainset_path, val, val_split_path)
    val_x, val_y = to_tensors(images[val], all_labels[val], device)

    # The seed's own streams: the initial weights and the batch order (streams.py).
    torch.manual_seed(stream_seed(seed, "init"))
    model = build_model(architecture).to(device)
    optimizer, schedule = make_optimizer(params["optimizers"][run["optimizer"]], model.parameters(), run["epochs"])
    generator = torch_stream(seed, "order")
    batches = -(-len(train_y) // run["batch_size"])

    # A job killed mid-epoch resumes after its last completed epoch, with the same weights,
    # optimizer state and data order, so that it ends as an uninterrupted run would.
    resume = resume_path(checkpoint_path)
    identity = {
        "run": run_name,
        "spec": {**run, "architecture": architecture, "optimizer_spec": params["optimizers"][run["optimizer"]]},
        "seed": seed,
        "threads": threads,
        "device": device.type,
        "trainset": digest_of(trainset_path),
        "val_split": digest_of(val_split_path),
    }
    state = load_state(resume, identity)
    history, first = [], 1
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        generator.set_state(state["generator"])
        history, first = state["history"], state["epoch"] + 1
        log.info("run %s seed %d: resuming after epoch %d (%s)", run_name, seed, state["epoch"], resume)
    log.info(
        "run %s, seed %d: %s, %s on %d images x %d views, %d epochs of %d batches, on %s with %d threads",
        run_name,
        seed,
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
    with logging_redirect_tqdm(), bar:  # on a terminal, a bar; in a log file, a line per epoch
        for epoch in range(first, run["epochs"] + 1):
            train_loss, train_acc, bad_step = train_epoch(
                model, optimizer, views[(epoch - 1) % len(views)], train_y, run["batch_size"], generator, bar
            )
            if bad_step:
                raise LenetError(
                    f"run {run_name} seed {seed}: the loss is not finite at epoch {epoch}, step "
                    f"{bad_step} of {batches}, with learning rate {optimizer.param_groups[0]['lr']}: "
                    f"training diverged (a smaller optimizers.{run['optimizer']}.lr may help)"
                )
            val_loss, val_acc, _ = score(predict(model, val_x, VALIDATION_BATCH), val_y)
            history.append(dict(zip(HISTORY_COLUMNS, [epoch, train_loss, train_acc, val_loss, val_acc])))
            log.info(
                "run %s seed %d epoch %d/%d: train loss %.4f acc %.4f | val loss %.4f acc %.4f",
                run_name,
                seed,
                epoch,
                run["epochs"],
                train_loss,
                train_acc,
                val_loss,
                val_acc,
            )
            schedule.step()
            if epoch < run["epochs"]:
                save_state(resume, identity, epoch, model, optimizer, schedule, generator, history)

    # Keys sorted: the checkpoint's bytes (and DVC's hash) must not follow params.yaml's key order.
    described = dict(sorted({**run, "run": run_name, "seed": seed}.items()))
    with atomic_set(history_path, checkpoint_path) as (history_tmp, checkpoint_tmp):  # both or neither
        write_history(history_tmp, history)
        save_checkpoint(checkpoint_tmp, model, dict(sorted(architecture.items())), described, run["epochs"])
    resume.unlink(missing_ok=True)
