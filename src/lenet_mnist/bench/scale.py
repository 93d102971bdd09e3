"""`lenet-mnist bench-scale`: how long `snakemake -n` and `dvc status` take to plan this repository's
study and a generated one of many runs."""

import itertools
import logging
import shutil
import subprocess
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import torch
import yaml

from lenet_mnist.bench.common import machine, median_seconds
from lenet_mnist.files import write_json
from lenet_mnist.jobs import trainings
from lenet_mnist.params import load_params
from lenet_mnist.sync import run_tool

log = logging.getLogger(__name__)


def generated_study(params, n_runs):
    """params with n_runs distinct runs, every combination of its models, optimizers, policies and
    fractions in turn, then again with one more epoch; one study holds them all."""
    names = [list(params[table]) for table in ("models", "optimizers", "policies")]
    fractions = params["subsample"]["fractions"]
    combos = [(m, o, p, f) for f in fractions for p in names[2] for o in names[1] for m in names[0]]
    runs = {
        f"r{i:04d}": {"model": m, "optimizer": o, "policy": p, "fraction": f, "epochs": 1 + i // len(combos)}
        for i, (m, o, p, f) in zip(range(n_runs), itertools.cycle(combos))
    }
    studies = {"all": {"question": f"{n_runs} generated runs", "figure": "learning_curves", "runs": list(runs)}}
    return {**params, "runs": runs, "studies": studies}


def timed(cmd, cwd, repeats):
    """Median wall time of a command of this environment, in seconds."""
    return median_seconds(lambda: run_tool(*cmd, cwd=cwd), repeats)


def bench_scale(params_path, n_runs, out_path, repeats):
    """`snakemake -n` and `dvc status` on this repository's params and on a generated study of
    n_runs runs, each in a fresh git copy of the repository (no outputs: every job to plan)."""
    files = subprocess.run(["git", "ls-files", "-z"], check=True, capture_output=True, text=True).stdout.split("\0")
    results = {}
    raw = yaml.safe_load(Path(params_path).read_text())
    for label, study in (("params.yaml", raw), (f"{n_runs} runs", generated_study(raw, n_runs))):
        with tempfile.TemporaryDirectory() as tmp:
            for name in filter(None, files):
                if not name.startswith("results/"):  # the outputs: every job is to plan
                    (Path(tmp) / name).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(name, Path(tmp) / name, follow_symlinks=False)
            (Path(tmp) / "params.yaml").write_text(yaml.safe_dump(study, sort_keys=False))
            (Path(tmp) / "dvc.lock").unlink(missing_ok=True)
            subprocess.run(["git", "init", "-q"], cwd=tmp, check=True)
            n_models = len(trainings(load_params(Path(tmp) / "params.yaml")))
            results[label] = {
                "runs": len(study["runs"]),
                "trained_models": n_models,
                "snakemake_dry_run_s": timed(["snakemake", "-n", "--quiet"], tmp, repeats),
                "dvc_status_s": timed(["dvc", "status", "--json"], tmp, repeats),
            }
        log.info(
            "%-12s %4d runs (%5d models): snakemake -n %.1f s, dvc status %.1f s",
            label,
            results[label]["runs"],
            n_models,
            results[label]["snakemake_dry_run_s"],
            results[label]["dvc_status_s"],
        )
    write_json(
        out_path,
        {
            "machine": machine(torch.device("cpu"), 1),
            "when": datetime.now(timezone.utc).isoformat(),
            "statistic": f"median of {repeats} after a warm-up",
            **results,
        },
    )
