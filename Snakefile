# lenet-mnist: `snakemake --cores 4` builds every output that params.yaml defines.
# dvc.yaml runs the same `lenet-mnist <stage>` commands on the same files.

import re
import shlex

from snakemake.utils import min_version

min_version("9.0")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        # Every checkpoint and history too: a kill that lost some (a forced rerun removes them
        # first) gets them rebuilt, although the results downstream are still there.
        every_training("models/{run}/{seed}.pt"),
        every_training("results/history/{run}/{seed}.csv"),
        "results/metrics.json",
        expand("results/plots/{run}.png", run=RUNS),
        expand("results/previews/{policy}.png", policy=[policy for policy, _ in previews(PARAMS)]),
        "results/figures",
        "results/derivations",


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
    if read_params("params.yaml") != WRITTEN:
        sys.exit(
            "lenet-mnist: error: params.yaml: edited while the jobs ran, which read it before; dvc.lock "
            "is not updated: run snakemake again"
        )
    # check's outputs too, which the Snakefile wrote as it was read (common.smk)
    generated = {JOBS_FILE, *map(fingerprint, FINGERPRINTED)}
    built = sorted({str(f) for job in workflow.dag.jobs for f in job.output} | generated)
    shell("lenet-mnist lock --log logs/lock.log " + " ".join(map(shlex.quote, built)))


onerror:
    release_dvc_lock()
