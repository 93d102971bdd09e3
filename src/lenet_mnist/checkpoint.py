"""Checkpoints: the weights, the architecture that holds them, the run's params and the epoch."""

import io
import pickle
import re

import torch

from lenet_mnist.errors import LenetError, one_line
from lenet_mnist.files import write_bytes
from lenet_mnist.model import build_model

KEYS = {"state_dict", "architecture", "params", "epoch"}


def save_tensors(path, obj):
    """torch.save into memory, then a temporary file renamed into place. Not to a path: torch
    names the archive's root after the file, and the temporary name would make equal checkpoints
    differ in their bytes (and DVC hashes). Not to a file: on a full disk torch's zip writer fails
    with an assertion, where a plain write says "No space left on device"."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_bytes(path, buffer.getvalue())


def load_tensors(path, what):
    """torch.load with weights_only=True, so no code is unpickled; any failure is one LenetError.
    (Its unpickler raises whatever the bytes lead it to: IndexError for b"truncated", say.)"""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # Not torch's message, which advises weights_only=False: that would run what the file holds.
        if found := re.search(r"Unsupported global: GLOBAL (\S+)", str(e)):
            raise LenetError(
                f"{path}: not a {what}: it holds a pickled {found[1]}, and only tensors are read"
            ) from None
        raise LenetError(f"{path}: not a readable {what} (not a file that torch.save wrote)") from None
    except Exception as e:
        raise LenetError(f"{path}: not a readable {what} ({one_line(e)})") from None


def save_checkpoint(path, model, architecture, params, epoch):
    save_tensors(
        path, {"state_dict": model.state_dict(), "architecture": architecture, "params": params, "epoch": epoch}
    )


def load_checkpoint(path):
    """(model with its weights, checkpoint dict)."""
    ckpt = load_tensors(path, "lenet-mnist checkpoint")
    if not isinstance(ckpt, dict) or not KEYS <= set(ckpt):
        raise LenetError(f"{path}: not a lenet-mnist checkpoint (expected keys {', '.join(sorted(KEYS))})")
    try:
        model = build_model(ckpt["architecture"])
        model.load_state_dict(ckpt["state_dict"])
    except (TypeError, KeyError, RuntimeError) as e:
        raise LenetError(f"{path}: weights do not fit architecture {ckpt['architecture']} ({one_line(e)})") from None
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise LenetError(f"{path}: {name} holds weights that are not finite (the training diverged)")
    return model, ckpt
