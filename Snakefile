# lenet-mnist: `snakemake --cores 4` builds every output that params.yaml defines.
# dvc.yaml runs the same `lenet-mnist <stage>` commands on the same files.

from snakemake.utils import min_version

min_version("9.0")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/resources.smk"
include: "workflow/rules/sync.smk"
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
