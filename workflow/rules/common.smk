# Helpers shared by the rules: params.yaml, validated once before any job runs.

import copy
import json
import math
import os
import sys

from snakemake.logging import logger

from lenet_mnist.check import JOBS_FILE, check_device, sync_generated
from lenet_mnist.errors import LenetError
from lenet_mnist.imports import STAGES as FINGERPRINTED
from lenet_mnist.imports import fingerprint_path
from lenet_mnist.jobs import (
    prepared_path,
    prepared_sets,
    previews,
    run_seeds,
    subset_path,
    subsets,
    trainings,
)
from lenet_mnist.params import read_params, validate_params
from lenet_mnist.sizes import run_size
from lenet_mnist.sync import hold_dvc_lock

# Experiments are params.yaml alone, which DVC records too: Snakemake's own config would be read
# by Snakemake only, so it is refused rather than ignored.
if workflow.config_settings.overwrite_config or workflow.config_settings.configfiles:
    sys.exit(
        "lenet-mnist: error: --config and --configfile are not read: the experiments are defined in "
        "params.yaml alone (which DVC records too); edit params.yaml, or try a change with "
        "dvc exp run -S key=value"
    )

try:
    WRITTEN = read_params("params.yaml")  # as DVC reads it: Snakemake's params records agree with dvc.lock
    PARAMS = validate_params(copy.deepcopy(WRITTEN), "params.yaml")
    # What `lenet-mnist check` writes for DVC: the code fingerprints that the rules' code inputs
    # are (rewritten only when a stage's code changes meaning) and dvc.yaml's job lists.
    sync_generated(PARAMS)
except (LenetError, OSError) as e:
    sys.exit(f"lenet-mnist: error: {e}")

# CUDA where the jobs run: a plan may be for a cluster, whose nodes have the GPUs, so it warns; a
# local run stops before its first job (onstart), which would remove the job's old outputs first.
try:
    check_device(PARAMS)
    NO_DEVICE = None
except LenetError as e:
    NO_DEVICE = e
    logger.warning(f"lenet-mnist: {e}; a local run stops before any job, a cluster's nodes need one")

# For `snakemake --report`: the captions and answers that the figures stage computed from the
# metrics, so that the report's text states measured numbers; nothing before the first run.
if os.path.exists("results/figures/report.json"):
    with open("results/figures/report.json") as f:
        config["measured"] = json.load(f)
if os.path.exists("results/derivations/checks.json"):
    with open("results/derivations/checks.json") as f:
        config["derivations"] = json.load(f)

DVC_LOCK_HELD = []  # by the onstart handler, until the run ends


def release_dvc_lock():
    while DVC_LOCK_HELD:
        DVC_LOCK_HELD.pop().close()


# KEPT: the outputs that cost a job to rebuild (splits, subsets, prepared sets, checkpoints,
# histories, metrics) are flagged update(). Snakemake would remove a job's outputs before it runs,
# and a job that then refused its input (another seed's set, say) or a params.yaml edited meanwhile
# would leave nothing; flagged, they stay, and Snakemake restores them where the job fails. The
# commands replace their outputs only once they have succeeded (files.py), as under DVC, whose
# outputs persist (dvc.yaml).

RUNS = list(PARAMS["runs"])
TRAININGS = trainings(PARAMS)  # (run, seed)
# Spelled as in params.yaml, so that paths agree with dvc.yaml's ${item} interpolation.
FRACTIONS = [str(f) for f in PARAMS["subsample"]["fractions"]]

# The raw files are checked against their official md5s, so their content never changes:
# rules read them as ancient(RAW), and rerunning download (after an edit to data.sources, say)
# reruns nothing downstream, as in DVC, where the directory's hash is unchanged.
RAW = "data/MNIST/raw"
SPLIT = {"train": "data/split/train.npy", "val": "data/split/val.npy"}


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


def fingerprint(stage):
    """A rule's code input: its stage's fingerprint (lenet_mnist/imports.py)."""
    return fingerprint_path(stage)


def written(*keys):
    """A params value as written in params.yaml, for Snakemake's params trigger: as DVC records it
    (a default changed in the schema reruns both through the fingerprints), with sorted keys, so
    that reordering params.yaml reruns nothing, as in DVC, which compares values."""
    value = WRITTEN
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return json.dumps(value, sort_keys=True)


def run_params(wildcards):
    """The run and the named entries it refers to, as dvc.yaml's train stage lists them."""
    run = PARAMS["runs"][wildcards.run]
    return written("runs", wildcards.run) + written("models", run["model"]) + written("optimizers", run["optimizer"])


def run_trainset(wildcards):
    run = PARAMS["runs"][wildcards.run]
    return prepared_path(run["policy"], str(run["fraction"]), wildcards.seed)


def run_files(pattern):
    """An input function: `pattern` for each seed of the wildcards' run."""
    return lambda wildcards: expand(pattern, run=wildcards.run, seed=run_seeds(PARAMS, wildcards.run))


def every_training(pattern):
    return [pattern.format(run=run, seed=seed) for run, seed in TRAININGS]


def preview_input(wildcards):
    return prepared_path(wildcards.policy, dict(previews(PARAMS))[wildcards.policy], 0)


wildcard_constraints:
    run="|".join(map(re.escape, RUNS)),
    fraction="|".join(map(re.escape, FRACTIONS)),
    policy="|".join(map(re.escape, PARAMS["policies"])),
    seed=r"\d+",
