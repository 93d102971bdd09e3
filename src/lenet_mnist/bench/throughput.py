"""`lenet-mnist bench`: training throughput of a train job against the notebook's loop, per core.

Each contender is timed in a fresh process of its own (contender.py), set up as its real
counterpart runs: the notebook's loop as the notebook ran it (torchvision.datasets.MNIST through a
DataLoader that converts image by image; for Q4, PIL transforms first), ours as a train job runs
(train.set_up_process, then train.train_epoch of one model on tensors in memory, augmented views
drawn beforehand as prepare does, their drawing included). A process warms up with one epoch and
times the next, as a train job runs epochs back to back. The contenders are interleaved (the
notebook's loop, ours, the notebook's loop, ours, ...) for several rounds, so that a slow spell of
a noisy machine falls on both; the report gives medians over the rounds, and each ratio's median,
lowest and highest over the rounds (against the contender it is compared with, of the same round).

Both sides train the notebook's LeNet with SGD (lr 0.01) in batches of 128, on the same images,
with the same thread count and device: with one thread, samples per second are per core. Also
timed: each model of params.yaml as lenet() writes it and as the train stage builds it, and
torch.func's vmap over several seeds in one step (the alternative to a process per seed), with
whether a seed's weights stay bit-identical when it trains beside other seeds.
"""

import json
import logging
import statistics
import subprocess
import sys
from datetime import datetime, timezone

from lenet_mnist.bench.common import machine
from lenet_mnist.bench.contender import BATCH
from lenet_mnist.devices import resolve_device
from lenet_mnist.files import write_json

log = logging.getLogger(__name__)

VMAP_SEEDS = [0, 1, 2]


def run_contender(spec):
    """The result of one contender, from a fresh Python process."""
    done = subprocess.run(
        [sys.executable, "-m", "lenet_mnist.bench.contender", json.dumps(spec)], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench contender {spec['name']} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def spread(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def speed_devices(architecture):
    """The speed devices of build_model and train.set_up_process that apply to a model: each is timed
    on and off, and stays only while it earns its lines (docs/speed.md)."""
    return [*(["channels_last"] if architecture.get("batchnorm", "none") == "none" else []), "allocator"]


def contenders(models):
    """Every contender, in the order of a round: each of ours right after what it is compared with."""
    yield {"name": "notebook plain", "loop": "notebook", "augmented": False}
    yield {"name": "ours plain", "loop": "ours", "augmented": False}
    yield {"name": "vmap plain", "loop": "vmap", "seeds": VMAP_SEEDS}
    yield {"name": "notebook augmented", "loop": "notebook", "augmented": True}
    yield {"name": "ours augmented", "loop": "ours", "augmented": True}
    for model, architecture in models.items():
        yield {"name": f"{model} as written", "loop": "as_written", "architecture": architecture}
        yield {"name": f"{model} ours", "loop": "ours", "augmented": False, "architecture": architecture}
        for device in speed_devices(architecture):
            yield {
                "name": f"{model} ours without {device}",
                "loop": "ours",
                "architecture": architecture,
                "off": device,
            }


def bench(params, raw_dir, out_path, threads, samples, repeats, device_name):
    """Every contender, for each model of params.yaml."""
    models = params["models"]
    device = resolve_device(device_name)
    common = {"raw": str(raw_dir), "samples": samples, "threads": threads, "device": str(device)}
    rounds = []
    for r in range(repeats):
        results = {}
        for spec in contenders(models):
            results[spec["name"]] = run_contender({**common, **spec})
            log.info("round %d/%d: %-32s %s", r + 1, repeats, spec["name"], brief(results[spec["name"]]))
        rounds.append(results)
    report = summarise(rounds, models)
    write_json(
        out_path,
        {
            "machine": machine(device, threads),
            "when": datetime.now(timezone.utc).isoformat(),
            "samples": samples,
            "repeats": repeats,
            "batch_size": BATCH,
            "statistic": "median over rounds of fresh processes",
            **report,
            # Each round's results in the order they ran (a list: the file's keys are sorted).
            "rounds": [[{"contender": name, **result} for name, result in r.items()] for r in rounds],
        },
    )
    log.info("-> %s", out_path)


def brief(result):
    return f"{result['samples_per_s']:9.0f} samples/s (pid {result['pid']})"


def summarise(rounds, models):
    """Medians over the rounds, and each ratio's spread over them."""

    def rates(name):
        return statistics.median(r[name]["samples_per_s"] for r in rounds)

    def ratios(name, against):
        return spread([r[name]["samples_per_s"] / r[against]["samples_per_s"] for r in rounds])

    report = {
        kind: {
            "notebook_samples_per_s": rates(f"notebook {kind}"),
            "our_samples_per_s": rates(f"ours {kind}"),
            "ratio": ratios(f"ours {kind}", f"notebook {kind}"),
        }
        for kind in ("plain", "augmented")
    }
    report["vmap"] = {
        "seeds": len(VMAP_SEEDS),
        "samples_per_s": rates("vmap plain"),
        "ratio_to_ours": ratios("vmap plain", "ours plain"),
        "bit_identical_beside_other_seeds": all(r["vmap plain"]["bit_identical_beside_other_seeds"] for r in rounds),
    }
    report["models"] = {
        model: {
            "as_written_samples_per_s": rates(f"{model} as written"),
            "our_samples_per_s": rates(f"{model} ours"),
            "ratio": ratios(f"{model} ours", f"{model} as written"),
            "devices": {
                device: ratios(f"{model} ours", f"{model} ours without {device}")
                for device in speed_devices(models[model])
            },
        }
        for model in models
    }
    for kind in ("plain", "augmented"):
        k, ratio = report[kind], report[kind]["ratio"]
        log.info(
            "%-9s notebook's loop %8.0f samples/s | a train job %8.0f | %.2fx (%.2f-%.2fx over %d rounds)",
            kind,
            k["notebook_samples_per_s"],
            k["our_samples_per_s"],
            ratio["median"],
            ratio["min"],
            ratio["max"],
            len(rounds),
        )
    vmap = report["vmap"]
    log.info(
        "vmap of %d seeds %8.0f samples/s: %.2fx a train job (%.2f-%.2fx); bit-identical beside other seeds: %s",
        vmap["seeds"],
        vmap["samples_per_s"],
        vmap["ratio_to_ours"]["median"],
        vmap["ratio_to_ours"]["min"],
        vmap["ratio_to_ours"]["max"],
        vmap["bit_identical_beside_other_seeds"],
    )
    return report
