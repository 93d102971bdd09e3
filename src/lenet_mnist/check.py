"""Stage `check`, DVC's first: params.yaml validated (the CLI does that before any stage), the code
fingerprints rewritten where a stage's code changed meaning (imports.py), and workflow/jobs.yaml,
the jobs that dvc.yaml loops over, kept equal to what params.yaml defines. Every other stage
depends on a fingerprint, so DVC runs this one first; the Snakefile does the same when it parses."""

import logging

from lenet_mnist.errors import LenetError
from lenet_mnist.imports import write_fingerprints, write_if_changed
from lenet_mnist.jobs import JOBS_FILE, jobs_yaml

log = logging.getLogger(__name__)


def check_device(params):
    """A plan that trains on CUDA needs a CUDA device where the jobs run: refused before any job
    (whose outputs Snakemake removes before it runs) rather than as a traceback in each."""
    if params["compute"]["device"] == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise LenetError(
                "params.yaml: compute.device: cuda, but torch finds no CUDA device on this machine "
                "(allowed here: auto, cpu)"
            )


def sync_generated(params):
    """Fingerprints and the jobs file, from the code and params.yaml; whether the jobs changed."""
    if rewritten := write_fingerprints():
        log.info("code fingerprints rewritten: %s", ", ".join(rewritten))
    return write_if_changed(JOBS_FILE, jobs_yaml(params))


def check(params):
    check_device(params)
    if sync_generated(params):
        raise LenetError(
            f"{JOBS_FILE}: rewritten, as params.yaml now defines other jobs (runs, seeds, fractions or "
            "their values); dvc read the old list, so run the same dvc command again"
        )
    log.info("params.yaml is valid; %s and the code fingerprints are up to date", JOBS_FILE)
