"""`lenet-mnist bench`: training throughput of our train stage against the notebook's loop.

The notebook trained from torchvision.datasets.MNIST through a DataLoader that converts image by image
(ToTensor, and for Q4 PIL transforms first); our train stage gathers batches from tensors held in
memory, its augmented views drawn beforehand by one grid_sample over many images (prepare), and
trains a run's seeds side by side as one stacked model (stacked.py), each as build_model() runs
it, in a process that keeps freed memory for reuse (allocator.py). The notebook's loop is measured as
the notebook ran it, and again with that allocator setting. Both sides train the notebook's LeNet with SGD
(lr 0.01) in batches of 128, on the same images, with the same thread count and device; our
augmented rate includes drawing the views. A training sample is one image through one model's
step: a stack of 3 seeds processes 3 per image. Our loop is also timed with one seed alone, and
each model of params.yaml as lenet() writes it (one seed) and as the train stage runs it. Rates
are medians over repeats, each after a warm-up pass, and our FLOP/s is set against the float32
matrix-multiply rate measured in the same run. Last, each pass of our step that does the counted
multiply-adds (convolutions, fully connected layers) is timed alone: how fast PyTorch's kernels
run on these shapes, and what our rate would be were the step's time theirs alone (the most that
work on anything else could gain).
"""

import collections
import logging
from datetime import datetime, timezone

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torch.utils.data import DataLoader, Subset
from torch.utils.flop_counter import FlopCounterMode
from torchvision import transforms
from tqdm import tqdm

from lenet_mnist.allocator import reuse_freed_memory
from lenet_mnist.augment import materialise
from lenet_mnist.bench.common import machine, median_seconds
from lenet_mnist.data import pixels, read_part
from lenet_mnist.files import write_json
from lenet_mnist.model import build_model, lenet
from lenet_mnist.stacked import StackedLinear, stack
from lenet_mnist.train import resolve_device, train_epoch

log = logging.getLogger(__name__)

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
# The targets that `bench` checks: times the notebook's loop, and a fraction of the matmul rate.
TARGETS = {"plain": 3.0, "augmented": 5.0, "fraction_of_matmul": 0.4}


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
        train_epoch(model, optimizer, pixels(views).squeeze(1), y, BATCH, generators, quiet)

    return epoch


def training_flops_per_sample(device):
    """Floating-point operations of one training step (forward and backward) of the notebook's LeNet,
    per image: its convolutions and matrix multiplies, as written (pooling is not counted, nor is
    our DepthwiseAvgPool, a convolution)."""
    model, _ = fresh_model(device, ours=False)
    x = torch.rand(BATCH, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (BATCH,), device=device)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    return counter.get_total_flops() / BATCH


def seconds_per_call(call, device, repeats, calls=10):
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


def multiply_add_passes(device, seeds, repeats):
    """Every pass of our training step of the notebook's LeNet (`seeds` stacked, as the train stage
    runs it) that does the multiply-adds training_flops_per_sample counts, each timed alone on
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


def matmul_flops(device, repeats):
    a, b = (torch.rand(MATMUL_SIDE, MATMUL_SIDE, device=device) for _ in range(2))
    return 2 * MATMUL_SIDE**3 / seconds_per_call(lambda: torch.mm(a, b), device, repeats)


def bench(models, seeds, raw_dir, out_path, threads, samples, repeats, device_name):
    """`seeds`: how many seeds our train stage stacks (params.yaml's)."""
    torch.set_num_threads(threads)
    device = resolve_device(device_name)
    images, labels = read_part(raw_dir, "train")
    images, labels = images[:samples], labels[:samples]
    kinds = {"plain": False, "augmented": True}

    def notebook_rates():
        return {
            kind: samples / median_seconds(notebook_loop(raw_dir, samples, augmented, device), repeats)
            for kind, augmented in kinds.items()
        }

    # The notebook's loop first, in a process as the notebook ran it; then again with our allocator
    # setting (which cannot be undone), to tell its share of the speed-up from the rest.
    notebook = notebook_rates()
    tuned = reuse_freed_memory()
    notebook_tuned = notebook_rates()

    def our_rate(augmented, n, ours=True, architecture=None):
        return n * samples / median_seconds(our_loop(images, labels, augmented, device, n, ours, architecture), repeats)

    results = {"allocator_tuned": tuned, "seeds": seeds}
    for kind, augmented in kinds.items():
        ours, alone = our_rate(augmented, seeds), our_rate(augmented, 1)
        results[kind] = {
            "seed_samples_per_s": notebook[kind],
            "seed_with_our_allocator_samples_per_s": notebook_tuned[kind],
            "our_samples_per_s": ours,
            "our_one_seed_samples_per_s": alone,
            "speedup": ours / notebook[kind],
            "speedup_over_seed_with_our_allocator": ours / notebook_tuned[kind],
        }
        log.info(
            "%-9s notebook's loop %8.0f samples/s (%8.0f with our allocator setting) | ours, %d seeds %8.0f "
            "samples/s (one seed %8.0f) | %.2fx (%.2fx)",
            kind,
            notebook[kind],
            notebook_tuned[kind],
            seeds,
            ours,
            alone,
            ours / notebook[kind],
            ours / notebook_tuned[kind],
        )
    results["models"] = {}
    for name, architecture in models.items():
        written, built = our_rate(False, 1, False, architecture), our_rate(False, seeds, True, architecture)
        results["models"][name] = {
            "as_written_samples_per_s": written,
            "our_samples_per_s": built,
            "speedup": built / written,
        }
        log.info(
            "model %-20s as lenet() writes it %8.0f samples/s | %d seeds as train runs them %8.0f | %.2fx",
            name,
            written,
            seeds,
            built,
            built / written,
        )
    per_sample = training_flops_per_sample(device)
    peak = matmul_flops(device, repeats)
    achieved = per_sample * results["plain"]["our_samples_per_s"]
    results["flops"] = {
        "training_flops_per_sample": per_sample,
        "our_flops_per_s": achieved,
        "matmul_flops_per_s": peak,
        "fraction_of_matmul": achieved / peak,
    }
    log.info(
        "training step: %.2f MFLOP per sample, %.1f GFLOP/s = %.1f%% of float32 matmul (%.1f GFLOP/s, %d^2)",
        per_sample / 1e6,
        achieved / 1e9,
        100 * achieved / peak,
        peak / 1e9,
        MATMUL_SIDE,
    )
    results["multiply_adds"] = multiply_add_bound(device, seeds, repeats, per_sample, peak, results)
    write_json(
        out_path,
        {
            "machine": machine(device, threads),
            "when": datetime.now(timezone.utc).isoformat(),
            "samples": samples,
            "repeats": repeats,
            "batch_size": BATCH,
            "statistic": "median",
            **results,
        },
    )
    log.info("-> %s", out_path)


def multiply_add_bound(device, seeds, repeats, per_sample, peak, results):
    """How fast PyTorch's kernels run each multiply-add pass of our step; the most that work on
    anything else (activations, pooling, loss, optimizer, batches, views) could gain, that is our
    rate were the step's time its multiply-add passes' alone; and for each target, the time that
    would leave for the rest against the time the rest takes now."""
    passes = multiply_add_passes(device, seeds, repeats)
    for row in passes:
        row["flops_per_s"] = row["flops"] / row["seconds"]
        row["fraction_of_matmul"] = row["flops_per_s"] / peak
        log.info(
            "%-7s %-25s %6.2f ms %6.1f GFLOP/s = %5.1f%% of matmul",
            row["layer"],
            row["pass"],
            row["seconds"] * 1e3,
            row["flops_per_s"] / 1e9,
            100 * row["fraction_of_matmul"],
        )
    seconds = sum(row["seconds"] for row in passes)
    step = {kind: seeds * BATCH / results[kind]["our_samples_per_s"] for kind in ("plain", "augmented")}
    rate = seeds * BATCH / seconds
    bound = {
        "samples_per_s": rate,
        "fraction_of_matmul": per_sample * rate / peak,
        **{f"{kind}_speedup": rate / results[kind]["seed_samples_per_s"] for kind in step},
    }
    log.info(
        "multiply-adds: %.1f ms of our %.1f ms step (%.0f%%); were the rest free, %.0f samples/s: %.2fx plain, "
        "%.2fx augmented, %.1f%% of matmul",
        seconds * 1e3,
        step["plain"] * 1e3,
        100 * seconds / step["plain"],
        rate,
        bound["plain_speedup"],
        bound["augmented_speedup"],
        100 * bound["fraction_of_matmul"],
    )
    needed = {kind: TARGETS[kind] * results[kind]["seed_samples_per_s"] for kind in step}
    needed["fraction_of_matmul"] = TARGETS["fraction_of_matmul"] * peak / per_sample  # a plain step's rate
    targets = {}
    for target, samples_per_s in needed.items():
        kind = "augmented" if target == "augmented" else "plain"
        allowed = seeds * BATCH / samples_per_s - seconds
        targets[target] = {
            "target": TARGETS[target],
            "samples_per_s": samples_per_s,
            "rest_seconds_allowed": allowed,
            "rest_seconds_now": step[kind] - seconds,
        }
        label = f"{TARGETS[target]:g}x {target}" if target in step else f"{TARGETS[target]:.0%} of matmul"
        log.info(
            "target %s: %.0f samples/s, which leaves %.1f ms of a step for all but the multiply-adds; they "
            "take %.1f ms now",
            label,
            samples_per_s,
            allowed * 1e3,
            (step[kind] - seconds) * 1e3,
        )
    return {
        "passes": passes,
        "seconds_per_step": seconds,
        "our_step_seconds": step["plain"],
        "share_of_step": seconds / step["plain"],
        "if_only_multiply_adds": bound,
        "targets": targets,
    }
