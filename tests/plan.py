"""`python tests/plan.py CORES [--forceall]`, in a checkout: the jobs that `snakemake --dry-run`
plans there, as JSON, from Snakemake's API (its DAG's jobs) rather than its printed text. A script
run in a process of its own: Snakemake's API changes the working directory and the logging of the
process it runs in."""

import json
import sys
from pathlib import Path

from snakemake.api import SnakemakeApi
from snakemake.settings.types import DAGSettings, OutputSettings, Quietness, ResourceSettings


def planned(job):
    """What a dry run prints of a job, as data (resources as Snakemake prints them: text)."""
    return {
        "rule": job.rule.name,
        "wildcards": ", ".join(f"{key}={value}" for key, value in job.wildcards_dict.items()),
        "cmd": job.shellcmd,
        "inputs": [str(path) for path in job.input],
        "outputs": sorted(str(path) for path in job.output),
        "side": [str(path) for path in job.log] + ([str(job.benchmark)] if job.benchmark else []),
        "threads": job.threads,
        "resources": {key: str(value) for key, value in job.resources.items() if not key.startswith("_")},
    }


def main(cores, *flags):
    with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
        workflow = api.workflow(resource_settings=ResourceSettings(cores=int(cores)), snakefile=Path("Snakefile"))
        dag = workflow.dag(dag_settings=DAGSettings(forceall="--forceall" in flags))
        dag.execute_workflow(executor="local", pseudo_executor="dryrun")
        # The jobs the dry run would run (the API returns no DAG; its jobs are public objects).
        jobs = workflow._workflow.dag.needrun_jobs(exclude_finished=False)
        print(json.dumps([planned(job) for job in jobs if job.rule.name != "all"]))


if __name__ == "__main__":
    main(*sys.argv[1:])
