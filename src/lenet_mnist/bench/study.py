"""`lenet-mnist bench-study`: what a whole Snakemake run of the study cost, rule by rule, from
Snakemake's benchmark files."""

import logging
from datetime import datetime, timezone

import pandas as pd
import torch

from lenet_mnist.bench.common import machine
from lenet_mnist.errors import LenetError
from lenet_mnist.files import write_json
from lenet_mnist.jobs import trainings
from lenet_mnist.sizes import run_size

log = logging.getLogger(__name__)


def bench_study(params, benchmark_dir, wall_s, out_path):
    """Per-rule times and peak memory from Snakemake's benchmark files of a whole run, the training
    samples its train jobs processed, and hence the aggregate rate over the run's wall time."""
    rows = [
        {"rule": tsv.relative_to(benchmark_dir).parts[0].removesuffix(".tsv"), **pd.read_csv(tsv, sep="\t").iloc[0]}
        for tsv in sorted(benchmark_dir.rglob("*.tsv"))
    ]
    if not rows:
        raise LenetError(f"{benchmark_dir}: no Snakemake benchmark files (run snakemake first)")
    table = (
        pd.DataFrame(rows)
        .groupby("rule", sort=False)
        .agg(
            jobs=("s", "size"),
            total_s=("s", "sum"),
            median_s=("s", "median"),
            max_s=("s", "max"),
            cpu_s=("cpu_time", "sum"),
            max_rss_mb=("max_rss", "max"),
        )
    )
    samples = sum(params["runs"][run]["epochs"] * run_size(params, run) for run, _ in trainings(params))
    study = {
        "machine": machine(torch.device("cpu"), params["compute"]["threads"]),
        "when": datetime.now(timezone.utc).isoformat(),
        "wall_s": wall_s,
        "training_samples": samples,
        "training_samples_per_s": samples / wall_s,
        "rules": table.round(2).to_dict(orient="index"),
    }
    write_json(out_path, study)
    log.info(
        "wall %.0f s, %d training samples, %.0f samples/s\n%s",
        wall_s,
        samples,
        samples / wall_s,
        table.round(1).to_string(),
    )
