# Snakemake and DVC in agreement: DVC's lock held while the jobs run, and dvc.lock updated with
# what a run built (lenet_mnist/sync.py).

import shlex
import sys

from lenet_mnist.check import JOBS_FILE
from lenet_mnist.errors import LenetError
from lenet_mnist.params import check_unchanged
from lenet_mnist.stages import FINGERPRINTED
from lenet_mnist.sync import hold_dvc_lock

DVC_LOCK_HELD = []  # by the onstart handler, until the run ends


def release_dvc_lock():
    while DVC_LOCK_HELD:
        DVC_LOCK_HELD.pop().close()


onstart:
    if NO_DEVICE and workflow.local_exec:
        sys.exit(f"lenet-mnist: error: {NO_DEVICE}")
    # DVC's lock of this checkout, held while the jobs run: `dvc repro` refuses meanwhile, and this
    # run refuses while a dvc command holds it (sync.py).
    try:
        DVC_LOCK_HELD.append(hold_dvc_lock())
    except LenetError as e:
        sys.exit(f"lenet-mnist: error: {e}")


onsuccess:
    # Every job of this run's DAG is now up to date: record the matching stages in dvc.lock, so that
    # `dvc status` agrees (sync.py). A failure here fails the run.
    release_dvc_lock()
    try:
        check_unchanged("params.yaml", WRITTEN, "the jobs", "dvc.lock is not updated: run snakemake again")
    except LenetError as e:
        sys.exit(f"lenet-mnist: error: {e}")
    # check's outputs too, which the Snakefile wrote as it was read (common.smk)
    generated = {JOBS_FILE, *map(fingerprint, FINGERPRINTED)}
    built = sorted({str(f) for job in workflow.dag.jobs for f in job.output} | generated)
    shell("lenet-mnist lock --log logs/lock.log " + " ".join(map(shlex.quote, built)))


onerror:
    release_dvc_lock()
