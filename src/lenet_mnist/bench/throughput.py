"""`lenet-mnist bench`: training throughput of our train stage against the notebook's loop.

Each contender is timed in a fresh process of its own (contender.py), set up as its real
counterpart runs: the notebook's loop as the notebook ran it (torchvision.datasets.MNIST through a
DataLoader that converts image by image; for Q4, PIL transforms first), ours as a train job runs
(train.set_up_process, then train.train_epoch on tensors in memory, a run's seeds side by side as
one stacked model, augmented views drawn beforehand as prepare does, their drawing included). A
process warms up with one epoch and times the next, as a train job runs epochs back to back. The
contenders are interleaved (the notebook's loop, ours, the notebook's loop, ours, ...) for several
rounds, so that a slow spell of a noisy machine falls on both; the report gives medians over the
rounds, and each ratio's median, lowest and highest over the rounds (ours against the notebook's
loop of the same round).

Both sides train the notebook's LeNet with SGD (lr 0.01) in batches of 128, on the same images,
with the same thread count and device. A training sample is one image through one model's step: a
stack of 3 seeds processes 3 per image. Ours is also timed with one seed alone, each model of
params.yaml as lenet() writes it (one seed) and as the train stage runs it, and each pass of our
step that does the counted multiply-adds (convolutions, fully connected layers), alone on operands
of the step's shapes and layouts: how fast PyTorch's kernels run on these shapes, and how much of
our step is anything else.
"""

import json
import logging
import statistics
import subprocess
import sys
from datetime import datetime, timezone

from lenet_mnist.bench.common import machine
from lenet_mnist.bench.contender import BATCH
from lenet_mnist.files import write_json
from lenet_mnist.train import resolve_device

log = logging.getLogger(__name__)

# The targets that `bench` reports on: times the notebook's loop, and our step against its multiply-adds.
TARGETS = {"plain": 3.0, "augmented": 5.0, "step_over_multiply_adds": 1.3}


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


def contenders(models, seeds):
    """Every contender, in the order of a round: each of ours right after what it is compared with."""
    yield {"name": "notebook plain", "loop": "notebook", "augmented": False}
    yield {"name": "ours plain", "loop": "ours", "augmented": False, "seeds": seeds}
    yield {"name": "ours plain, one seed", "loop": "ours", "augmented": False, "seeds": 1}
    yield {"name": "notebook augmented", "loop": "notebook", "augmented": True}
    yield {"name": "ours augmented", "loop": "ours", "augmented": True, "seeds": seeds}
    yield {"name": "multiply-add passes", "loop": "passes", "seeds": seeds}
    for model, architecture in models.items():
        yield {"name": f"{model} as written", "loop": "as_written", "architecture": architecture, "seeds": 1}
        yield {
            "name": f"{model} ours",
            "loop": "ours",
            "augmented": False,
            "architecture": architecture,
            "seeds": seeds,
        }


def bench(models, seeds, raw_dir, out_path, threads, samples, repeats, device_name):
    """`seeds`: how many seeds our train stage stacks (params.yaml's)."""
    device = resolve_device(device_name)
    common = {"raw": str(raw_dir), "samples": samples, "threads": threads, "device": str(device)}
    rounds = []
    for r in range(repeats):
        results = {}
        for spec in contenders(models, seeds):
            results[spec["name"]] = run_contender({**common, **spec})
            log.info("round %d/%d: %-32s %s", r + 1, repeats, spec["name"], brief(results[spec["name"]]))
        rounds.append(results)
    report = summarise(rounds, models, seeds)
    write_json(
        out_path,
        {
            "machine": machine(device, threads),
            "when": datetime.now(timezone.utc).isoformat(),
            "samples": samples,
            "repeats": repeats,
            "batch_size": BATCH,
            "seeds": seeds,
            "statistic": "median over rounds of fresh processes",
            **report,
            # Each round's results in the order they ran (a list: the file's keys are sorted).
            "rounds": [[{"contender": name, **result} for name, result in r.items()] for r in rounds],
        },
    )
    log.info("-> %s", out_path)


def brief(result):
    if "samples_per_s" in result:
        return f"{result['samples_per_s']:9.0f} samples/s (pid {result['pid']})"
    return f"{1e3 * sum(p['seconds'] for p in result['passes']):6.2f} ms of multiply-add passes (pid {result['pid']})"


def summarise(rounds, models, seeds):
    """Medians over the rounds, and each ratio's spread over them."""

    def rates(name):
        return [r[name]["samples_per_s"] for r in rounds]

    def ratios(name, against):
        return spread([r[name]["samples_per_s"] / r[against]["samples_per_s"] for r in rounds])

    report = {}
    for kind in ("plain", "augmented"):
        report[kind] = {
            "notebook_samples_per_s": statistics.median(rates(f"notebook {kind}")),
            "our_samples_per_s": statistics.median(rates(f"ours {kind}")),
            "ratio": ratios(f"ours {kind}", f"notebook {kind}"),
        }
    report["plain"]["our_one_seed_samples_per_s"] = statistics.median(rates("ours plain, one seed"))
    report["models"] = {
        model: {
            "as_written_samples_per_s": statistics.median(rates(f"{model} as written")),
            "our_samples_per_s": statistics.median(rates(f"{model} ours")),
            "ratio": ratios(f"{model} ours", f"{model} as written"),
        }
        for model in models
    }
    report["multiply_adds"] = multiply_adds(rounds, seeds)
    for kind in ("plain", "augmented"):
        k, ratio = report[kind], report[kind]["ratio"]
        log.info(
            "%-9s notebook's loop %8.0f samples/s | ours, %d seeds %8.0f | %.2fx (%.2f-%.2fx over %d rounds)",
            kind,
            k["notebook_samples_per_s"],
            seeds,
            k["our_samples_per_s"],
            ratio["median"],
            ratio["min"],
            ratio["max"],
            len(rounds),
        )
    step = report["multiply_adds"]
    log.info(
        "our step %.2f ms, its multiply-add passes %.2f ms: %.2fx (%.2f-%.2fx)",
        1e3 * step["our_step_seconds"],
        1e3 * step["seconds_per_step"],
        step["step_over_passes"]["median"],
        step["step_over_passes"]["min"],
        step["step_over_passes"]["max"],
    )
    report["targets"] = targets(report, seeds)
    return report


def multiply_adds(rounds, seeds):
    """Each pass's median time and its rate against the median float32 matrix-product rate, and our
    plain step (from the same round's rate) against the passes' sum."""
    matmul = statistics.median(r["multiply-add passes"]["matmul_flops_per_s"] for r in rounds)
    passes = []
    for i, row in enumerate(rounds[0]["multiply-add passes"]["passes"]):
        seconds = statistics.median(r["multiply-add passes"]["passes"][i]["seconds"] for r in rounds)
        passes.append(
            {
                **{key: row[key] for key in ("layer", "pass", "flops")},
                "seconds": seconds,
                "flops_per_s": row["flops"] / seconds,
                "fraction_of_matmul": row["flops"] / seconds / matmul,
            }
        )
    sums = [sum(p["seconds"] for p in r["multiply-add passes"]["passes"]) for r in rounds]
    steps = [seeds * BATCH / r["ours plain"]["samples_per_s"] for r in rounds]
    return {
        "passes": passes,
        "matmul_flops_per_s": matmul,
        "seconds_per_step": statistics.median(sums),
        "our_step_seconds": statistics.median(steps),
        "step_over_passes": spread([step / total for step, total in zip(steps, sums)]),
    }


def targets(report, seeds):
    """Each target against the median measured, and what a step at its rate would leave for
    everything but the multiply-add passes, against what that takes now."""
    passes = report["multiply_adds"]["seconds_per_step"]
    out = {}
    for kind in ("plain", "augmented"):
        needed = TARGETS[kind] * report[kind]["notebook_samples_per_s"]
        out[kind] = {
            "target": TARGETS[kind],
            "measured": report[kind]["ratio"]["median"],
            "met": report[kind]["ratio"]["median"] >= TARGETS[kind],
            "rest_seconds_allowed": seeds * BATCH / needed - passes,
            "rest_seconds_now": seeds * BATCH / report[kind]["our_samples_per_s"] - passes,
        }
    measured = report["multiply_adds"]["step_over_passes"]["median"]
    out["step_over_multiply_adds"] = {
        "target": TARGETS["step_over_multiply_adds"],
        "measured": measured,
        "met": measured <= TARGETS["step_over_multiply_adds"],
        "rest_seconds_allowed": (TARGETS["step_over_multiply_adds"] - 1) * passes,
        "rest_seconds_now": report["multiply_adds"]["our_step_seconds"] - passes,
    }
    for name, target in out.items():
        log.info(
            "target %s %.2f: measured %.2f (%s); it leaves %.2f ms of a step for all but the multiply-adds, "
            "which take %.2f ms now",
            name,
            target["target"],
            target["measured"],
            "met" if target["met"] else "not met",
            1e3 * target["rest_seconds_allowed"],
            1e3 * target["rest_seconds_now"],
        )
    return out
