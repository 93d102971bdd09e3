"""One contender of `lenet-mnist bench`, run as `python -m lenet_mnist.bench.contender SPEC` in a
fresh process: SPEC (JSON) names the loop and its settings, and the process prints its result as
one line of JSON. Loops: "notebook" (the notebook's), "ours" (a train job's epoch, one model),
"as_written" (the same epoch on lenet() as written) and "vmap" (torch.func's stack_module_state
and vmap: `seeds` models in one step, the candidate for training seeds side by side)."""

import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch.func import functional_call, grad_and_value, stack_module_state, vmap
from torch.utils.data import DataLoader, Subset
from torchvision import transforms
from tqdm import tqdm

from lenet_mnist.augment import materialise
from lenet_mnist.bench.common import median_seconds
from lenet_mnist.data import read_part
from lenet_mnist.model import build_model, lenet, to_unit
from lenet_mnist.streams import torch_stream
from lenet_mnist.train import set_up_process, train_epoch

BATCH, LR = 128, 0.01
# The notebook's Q4 transforms, RandomRotation(20) and RandomHorizontalFlip, as our policy: one view.
NOTEBOOK_POLICY = {
    "rotation": 20,
    "translate": 0,
    "scale": [1, 1],
    "shear": 0,
    "hflip": True,
    "elastic": None,
    "views": 1,
    "originals": False,
}


def fresh_model(device, ours, architecture=None, seed=0):
    """A LeNet (the notebook's unless told) with SGD: as our train stage builds it, or as written."""
    torch.manual_seed(seed)
    model = (build_model if ours else lambda a: lenet(**a))(architecture or {}).to(device)
    return model, torch.optim.SGD(model.parameters(), lr=LR)


def notebook_loop(raw_dir, n, augmented, device):
    """An epoch of the notebook's kind over the first n training images."""
    steps = [transforms.RandomRotation(20), transforms.RandomHorizontalFlip()] if augmented else []
    dataset = torchvision.datasets.MNIST(
        raw_dir.parent.parent, train=True, download=False, transform=transforms.Compose([*steps, transforms.ToTensor()])
    )
    loader = DataLoader(Subset(dataset, range(n)), batch_size=BATCH, shuffle=True)
    model, optimizer = fresh_model(device, ours=False)

    def epoch():
        model.train()
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return epoch


def our_loop(images, labels, augmented, device, ours=True, architecture=None, off=None):
    """An epoch of a train job (train.train_epoch) over the same images, one model (built as the
    train stage builds it, or as written, or without the speed device `off`); augmented, it first
    draws one view of every image, as prepare does."""
    model, optimizer = fresh_model(device, ours, architecture)
    if off == "channels_last":
        model.to(memory_format=torch.contiguous_format)  # in place: the optimizer keeps its parameters
    layout = torch.contiguous_format if off == "channels_last" or not ours else torch.channels_last
    originals = torch.from_numpy(np.require(images, requirements=["C", "W"])).to(device)
    y = torch.from_numpy(labels.astype("int64")).to(device)
    generator = torch_stream(0, "order")
    quiet = tqdm(disable=True)

    def epoch():
        if augmented:
            views = torch.from_numpy(materialise(images, NOTEBOOK_POLICY, torch_stream(0, "views"))[0]).to(device)
        else:
            views = originals
        train_epoch(model, optimizer, views, y, BATCH, generator, quiet, layout)

    return epoch


def vmap_loop(images, labels, device, seeds):
    """An epoch of `seeds` of the notebook's LeNet in one vmapped SGD step per batch, each model on
    its own batch order; returns the epoch and a function giving model 0's weights."""
    models = [fresh_model(device, ours=True, seed=seed)[0] for seed in seeds]
    params, buffers = stack_module_state(models)
    base = models[0]
    x_all = torch.from_numpy(np.require(images, requirements=["C", "W"])).to(device)
    y_all = torch.from_numpy(labels.astype("int64")).to(device)
    generators = [torch_stream(seed, "order") for seed in seeds]

    def loss(p, b, x, y):
        return F.cross_entropy(functional_call(base, (p, b), (x,)), y)

    step = vmap(grad_and_value(loss))

    def epoch():
        orders = torch.stack([torch.randperm(len(y_all), generator=g) for g in generators]).to(device)
        for start in range(0, len(y_all), BATCH):
            batch = orders[:, start : start + BATCH]
            x = to_unit(x_all[batch].unsqueeze(2))  # seeds x b x 1 x 28 x 28
            grads, _ = step(params, buffers, x, y_all[batch])
            with torch.no_grad():
                for name in params:
                    params[name].sub_(LR * grads[name])

    return epoch, lambda: {name: value[0].clone() for name, value in params.items()}


def seconds_per_call(call, device, repeats=5, calls=10):
    """Median seconds of one call, timed over `calls` in a row (and the GPU's work done)."""

    def calls_in_a_row():
        for _ in range(calls):
            call()
        if device.type == "cuda":
            torch.cuda.synchronize()

    return median_seconds(calls_in_a_row, repeats) / calls


def run(spec):
    device, loop = torch.device(spec["device"]), spec["loop"]
    if loop == "notebook":  # a process as the notebook ran it: only its thread count is ours
        torch.set_num_threads(spec["threads"])
    else:
        set_up_process(spec["threads"], reuse_memory=spec.get("off") != "allocator")
    raw_dir, samples = Path(spec["raw"]), spec["samples"]
    if loop == "notebook":
        epoch = notebook_loop(raw_dir, samples, spec["augmented"], device)
        return {"samples_per_s": samples / seconds_per_call(epoch, device, repeats=1, calls=1)}
    images, labels = read_part(raw_dir, "train")
    images, labels = images[:samples], labels[:samples]
    if loop == "vmap":
        # Model 0's weights after two epochs, trained beside other seeds and beside others still.
        epoch, first = vmap_loop(images, labels, device, spec["seeds"])
        rate = len(spec["seeds"]) * samples / seconds_per_call(epoch, device, repeats=1, calls=1)
        other, other_first = vmap_loop(
            images, labels, device, [spec["seeds"][0], *(s + 100 for s in spec["seeds"][1:])]
        )
        other()
        other()
        same = all(torch.equal(a, b) for a, b in zip(first().values(), other_first().values()))
        return {"samples_per_s": rate, "bit_identical_beside_other_seeds": same}
    epoch = our_loop(
        images,
        labels,
        spec.get("augmented", False),
        device,
        ours=loop == "ours",
        architecture=spec.get("architecture"),
        off=spec.get("off"),
    )
    # One epoch to warm up, as a train job's first, then one timed.
    return {"samples_per_s": samples / seconds_per_call(epoch, device, repeats=1, calls=1)}


if __name__ == "__main__":
    result = run(json.loads(sys.argv[1]))
    # How the process was set up, for the report to show that each contender ran as it should.
    setup = {
        "pid": os.getpid(),
        "threads": torch.get_num_threads(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
    }
    print(json.dumps({**result, **setup}))
