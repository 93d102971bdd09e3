"""One contender of `lenet-mnist bench`, run as `python -m lenet_mnist.bench.contender SPEC` in a
fresh process: SPEC (JSON) names the loop and its settings, and the process prints its result as
one line of JSON. Loops: "notebook" (the notebook's, one model), "ours" (the train stage's epoch,
`seeds` models stacked), "as_written" (the train stage's epoch on one lenet() as written) and
"passes" (each multiply-add pass of our step alone, and a float32 matrix product)."""

import collections
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torch.utils.data import DataLoader, Subset
from torchvision import transforms
from tqdm import tqdm

from lenet_mnist.augment import materialise
from lenet_mnist.bench.common import median_seconds
from lenet_mnist.data import read_part
from lenet_mnist.model import build_model, lenet
from lenet_mnist.stacked import StackedLinear, stack
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
    "seed": 0,
}
MATMUL_SIDE = 1024


def fresh_model(device, ours, architecture=None, seeds=1):
    """A LeNet (the notebook's unless told) with SGD: one as written, or `seeds` of them stacked as our
    train stage builds them."""
    architecture = architecture or {}
    if ours:
        singles = []
        for seed in range(seeds):
            torch.manual_seed(seed)
            singles.append(build_model(architecture))
        model = stack(singles)
    else:
        torch.manual_seed(0)
        model = lenet(**architecture)
    model = model.to(device)
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


def our_loop(images, labels, augmented, device, seeds, ours=True, architecture=None):
    """An epoch of our train stage (train.train_epoch) over the same images, for `seeds` models
    (stacked, or one as written); augmented, it first draws one view of every image, as prepare
    does. Its training samples: seeds x images."""
    model, optimizer = fresh_model(device, ours, architecture, seeds)
    originals = torch.from_numpy(np.require(images, requirements=["C", "W"])).to(device)
    y = torch.from_numpy(labels.astype("int64")).to(device)
    generators = [torch.Generator().manual_seed(seed) for seed in range(seeds)]
    quiet = tqdm(disable=True)

    def epoch():
        views = torch.from_numpy(materialise(images, NOTEBOOK_POLICY)[0]).to(device) if augmented else originals
        train_epoch(model, optimizer, views, y, BATCH, generators, quiet)

    return epoch


def seconds_per_call(call, device, repeats=5, calls=10):
    """Median seconds of one call, timed over `calls` in a row (and the GPU's work done)."""

    def calls_in_a_row():
        for _ in range(calls):
            call()
        if device.type == "cuda":
            torch.cuda.synchronize()

    return median_seconds(calls_in_a_row, repeats) / calls


def layer_passes(layer, x, out, first):
    """The multiply-add passes of one convolution or (stacked) fully connected layer of a training
    step, as calls on its operands: forward, input gradient (unless first: the images need none),
    weight and bias gradients. Each does as many multiply-adds as the forward pass."""
    grad, weight, bias = torch.randn_like(out), layer.weight.detach(), layer.bias.detach()
    if isinstance(layer, nn.Conv2d):
        geometry = (layer.stride, layer.padding, layer.dilation, False, [0, 0], layer.groups)

        def gradients(mask):
            return lambda: torch.ops.aten.convolution_backward(grad, x, weight, [len(weight)], *geometry, mask)

        passes = {
            "forward": lambda: torch.ops.aten.convolution(x, weight, bias, *geometry),
            "input gradient": gradients([True, False, False]),
            "weight and bias gradients": gradients([False, True, True]),
        }
    else:  # StackedLinear, as autograd differentiates its baddbmm
        passes = {
            "forward": lambda: torch.baddbmm(bias, x, weight),
            "input gradient": lambda: torch.bmm(grad, weight.transpose(1, 2)),
            "weight and bias gradients": lambda: (torch.bmm(x.transpose(1, 2), grad), grad.sum(1)),
        }
    if first:
        del passes["input gradient"]
    return passes


def multiply_add_passes(device, seeds, repeats=5):
    """Every pass of our training step of the notebook's LeNet (`seeds` stacked, as the train stage
    runs it) that does multiply-adds (its convolutions and fully connected layers), each timed alone on
    operands of the step's shapes and layouts. A row per pass: its FLOPs (2 per multiply-add;
    FlopCounterMode would count a grouped convolution's weight gradient `groups` times over) and
    its median seconds."""
    model, _ = fresh_model(device, ours=True, seeds=seeds)
    # Not the pooling's fixed convolutions (DepthwiseAvgPool), which are not counted.
    layers = [layer for layer in model if type(layer) in (nn.Conv2d, StackedLinear)]
    operands = []
    hooks = [layer.register_forward_hook(lambda _, args, out: operands.append((args[0], out))) for layer in layers]
    with torch.no_grad():
        model(torch.rand(BATCH, seeds, 28, 28, device=device))
    for hook in hooks:
        hook.remove()
    rows, counts = [], collections.Counter()
    for i, (layer, (x, out)) in enumerate(zip(layers, operands)):
        kind = "conv" if isinstance(layer, nn.Conv2d) else "linear"
        counts[kind] += 1
        name = f"{kind}{counts[kind]}"
        flops = 2 * out.numel() * (layer.weight[0].numel() if kind == "conv" else x.shape[-1])
        for step_pass, call in layer_passes(layer, x, out, first=i == 0).items():
            rows.append(
                {"layer": name, "pass": step_pass, "flops": flops, "seconds": seconds_per_call(call, device, repeats)}
            )
    return rows


def matmul_flops(device, repeats=5):
    a, b = (torch.rand(MATMUL_SIDE, MATMUL_SIDE, device=device) for _ in range(2))
    return 2 * MATMUL_SIDE**3 / seconds_per_call(lambda: torch.mm(a, b), device, repeats)


def run(spec):
    device, loop = torch.device(spec["device"]), spec["loop"]
    if loop == "notebook":  # a process as the notebook ran it: only its thread count is ours
        torch.set_num_threads(spec["threads"])
    else:
        set_up_process(spec["threads"])
    if loop == "passes":
        return {"passes": multiply_add_passes(device, spec["seeds"]), "matmul_flops_per_s": matmul_flops(device)}
    raw_dir, samples = Path(spec["raw"]), spec["samples"]
    if loop == "notebook":
        epoch, trained = notebook_loop(raw_dir, samples, spec["augmented"], device), samples
    else:
        images, labels = read_part(raw_dir, "train")
        epoch = our_loop(
            images[:samples],
            labels[:samples],
            spec.get("augmented", False),
            device,
            spec["seeds"],
            ours=loop == "ours",
            architecture=spec.get("architecture"),
        )
        trained = spec["seeds"] * samples
    # One epoch to warm up, as a train job's first, then one timed.
    return {"samples_per_s": trained / seconds_per_call(epoch, device, repeats=1, calls=1)}


if __name__ == "__main__":
    result = run(json.loads(sys.argv[1]))
    # How the process was set up, for the report to show that each contender ran as it should.
    setup = {
        "pid": os.getpid(),
        "threads": torch.get_num_threads(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
    }
    print(json.dumps({**result, **setup}))
