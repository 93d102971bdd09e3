# params.yaml, validated once before any job runs, and what the rules read of it: the jobs, their
# paths and params.

import copy
import json
import re
import sys

from snakemake.logging import logger

from lenet_mnist.check import sync_generated
from lenet_mnist.devices import check_device
from lenet_mnist.errors import LenetError
from lenet_mnist.fingerprints import fingerprint_path
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


def fingerprint(stage):
    """A rule's code input: its stage's fingerprint (lenet_mnist/fingerprints.py)."""
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
