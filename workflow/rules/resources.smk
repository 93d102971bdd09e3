# What each job holds on this machine and asks of a cluster's scheduler, and which jobs go first.

import json
import math
import os

from snakemake.logging import logger

from lenet_mnist.sizes import run_size


def train_job_cores(wildcards):
    """The cores a training job holds: its torch threads. Run locally, times how many times
    --cores exceeds this machine's CPUs (`--cores 4` on 2 CPUs: 2), so that training jobs side by
    side never run more threads than there are CPUs (time-sliced jobs ran slower). On a cluster
    each job gets CPUs of its own: there it holds its threads alone."""
    threads = PARAMS["compute"]["threads"]
    if not workflow.local_exec:
        return threads
    cores = workflow.resource_settings.cores or 1  # None where nothing runs (--report)
    return threads * max(1, cores // len(os.sched_getaffinity(0)))


# What a job asks of a cluster's scheduler (workflow/profiles/slurm): the peak memory and time that
# the last `make bench-study` measured for its rule (benchmarks/study.json), with headroom, more
# for time, which a slower or busier node stretches; a training job's time in proportion to the
# images it trains on. A rule without a measurement gets the defaults below, and a warning. Each
# retry of a job that failed (killed at its time or memory limit, say) asks for that much again:
# the profile's `retries` let it grow into a slower node, and a training job resumes after its
# last whole epoch.
DEFAULTS = {"max_rss_mb": 2048, "max_s": 600}
try:
    with open("benchmarks/study.json") as f:
        STUDY = json.load(f)
    MEASURED = STUDY["rules"]
except (OSError, ValueError, KeyError, TypeError) as e:
    logger.warning(f"lenet-mnist: benchmarks/study.json: not read ({e}); every rule gets the default resources")
    STUDY, MEASURED = {}, {}
MEMORY_HEADROOM = 2
TIME_HEADROOM = 4
MIN_RUNTIME = 1  # minute, SLURM's smallest limit: a job that needs more on a slow node gets it on retry


def measured(name):
    """A rule's measurement, or the defaults (and a warning naming it)."""
    if name not in MEASURED:
        logger.warning(f"lenet-mnist: benchmarks/study.json has no entry for {name}; it gets the default resources")
    return MEASURED.get(name, DEFAULTS)


def by_attempt(first):
    """A resource callable: `first` on a job's first attempt, times the attempt after that."""
    return lambda wildcards, attempt: attempt * (first(wildcards) if callable(first) else first)


def needs(rule, runtime=None, **overrides):
    """A rule's resources: memory and time (minutes, or a function of the wildcards) from its
    measurement, growing with each attempt, and one CPU, unless overridden."""
    found = measured(rule)
    return {
        "mem_mb": by_attempt(256 * math.ceil(MEMORY_HEADROOM * found["max_rss_mb"] / 256)),
        "runtime": by_attempt(runtime or max(MIN_RUNTIME, math.ceil(TIME_HEADROOM * found["max_s"] / 60))),
        "cpus_per_task": 1,
        **overrides,
    }


def train_runtime(wildcards):
    """Minutes: the job's training samples (its images times epochs) at the rate that the measured
    study's training jobs reached; without a measurement, the default."""
    if "train" not in MEASURED or not STUDY.get("training_samples"):
        return max(MIN_RUNTIME, math.ceil(TIME_HEADROOM * DEFAULTS["max_s"] / 60))
    seconds_per_sample = MEASURED["train"]["total_s"] / STUDY["training_samples"]
    samples = run_size(PARAMS, wildcards.run) * PARAMS["runs"][wildcards.run]["epochs"]
    return max(MIN_RUNTIME, math.ceil(TIME_HEADROOM * samples * seconds_per_sample / 60))


def train_priority(wildcards):
    """Longest training jobs first (their images times epochs), so that the run ends on short jobs
    side by side rather than one long job alone, which would leave the other CPUs idle."""
    run = PARAMS["runs"][wildcards.run]
    return round(100 * run["fraction"] * run["epochs"])
