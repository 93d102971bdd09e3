"""`lenet-mnist bench-drift`: how far a retrain on another machine type moves what the claims read.
Each (run, seed) is trained again in a fresh process with oneDNN and ATen capped at AVX2
(ONEDNN_MAX_CPU_ISA=AVX2, ATEN_CPU_CAPABILITY=avx2): the kernels an AVX2-only machine runs, which
round differently from AVX-512's and AMX's, as another CPU's do. Its history is set beside the
one this checkout holds (results/history), built with this machine's kernels or another
machine's.

- `--jobs RUN:SEED ...`: the validation phase's measure. It keeps both histories of each job, from
  which the design stage takes the drift of every claim's metric; no test metric is read.
- `--studies STUDY ...`: the check that claims keep their verdicts. Every job of those studies'
  claims is retrained and scored on the test set, and each claim is judged again, Holm's family
  and all, from the AVX2 numbers beside the judgement of results/summary.json's."""

import json
import logging
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import torch

from lenet_mnist.bench.common import library_versions, machine
from lenet_mnist.claims import confirmed_value, judge, key
from lenet_mnist.errors import LenetError
from lenet_mnist.files import write_json
from lenet_mnist.jobs import prepared_path, run_seeds
from lenet_mnist.records import history_of, read_history, read_json, read_metrics

log = logging.getLogger(__name__)

AVX2 = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
RAW, VAL = "data/MNIST/raw", "data/split/val.npy"


def lenet_mnist(*args, log_path):
    """A stage's command in a fresh process under AVX2's kernels; its log's end if it fails."""
    command = [sys.executable, "-m", "lenet_mnist.cli", *map(str, args), "--log", str(log_path)]
    done = subprocess.run(command, env={**os.environ, **AVX2}, capture_output=True, text=True)
    if done.returncode:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        raise LenetError(f"{' '.join(command[3:5])} under AVX2 kernels failed: {tail}")


def retrain(params_path, params, run, seed, workdir, score):
    """The AVX2 history of (run, seed), and its test accuracy if `score`."""
    spec = params["runs"][run]
    trainset = prepared_path(spec["policy"], str(spec["fraction"]), seed)
    if not Path(trainset).exists():
        raise LenetError(f"{trainset}: missing; build it first (snakemake --cores 2 {trainset})")
    out = Path(workdir) / run / str(seed)
    out.mkdir(parents=True)
    job = ["--params", params_path, "--run", run, "--seed", seed]
    lenet_mnist(
        "train",
        *job,
        *("--trainset", trainset, "--raw", RAW, "--val-split", VAL, "--threads", params["compute"]["threads"]),
        *("--checkpoint", out / "model.pt", "--history", out / "history.csv"),
        log_path=out / "train.log",
    )
    history = read_history(out / "history.csv", run, seed, spec["epochs"])
    if not score:
        return history, None
    lenet_mnist(
        "evaluate",
        *job,
        "--checkpoint",
        out / "model.pt",
        "--raw",
        RAW,
        "--out",
        out / "metrics.json",
        log_path=out / "evaluate.log",
    )
    return history, read_metrics(out / "metrics.json", run, seed)


def claim_jobs(params, studies):
    """(run, seed) of every job that the claims of these studies read."""
    found = {
        (run, seed)
        for study in studies
        for claim in params["studies"][study].get("claims", [])
        for run in (claim["run"], claim["reference"])
        for seed in run_seeds(params, run)
    }
    return sorted(found)


def judged_again(params, design, studies, native, avx2):
    """Each claim of the studies judged from native and from AVX2 numbers: {study: {claim: ...}}."""
    found = {}
    for study in studies:
        claims = params["studies"][study].get("claims", [])
        planned = design["claims"][study]
        confirmatory = [planned[key(c)]["phase"] == "confirmatory" for c in claims]
        verdicts = {}
        for kernels, values in (("native", native), ("avx2", avx2)):
            differences = [
                [
                    values[c["run"], seed](c) - values[c["reference"], seed](c)
                    for seed in sorted(set(run_seeds(params, c["run"])) & set(run_seeds(params, c["reference"])))
                ]
                for c in claims
            ]
            verdicts[kernels] = judge(claims, differences, confirmatory)
        found[study] = {
            key(c): {"native": native_, "avx2": avx2_, "kept": native_["verdict"] == avx2_["verdict"]}
            for c, native_, avx2_ in zip(claims, verdicts["native"], verdicts["avx2"])
        }
    return found


def bench_drift(params_path, params, jobs, studies, out_path, parallel):
    unknown = [study for study in studies if study not in params["studies"]]
    if unknown:
        raise LenetError(
            f"--studies {unknown[0]}: not a study of params.yaml (allowed: {', '.join(params['studies'])})"
        )
    for run, seed in jobs:
        if run not in params["runs"] or seed not in run_seeds(params, run):
            raise LenetError(f"--jobs {run}:{seed}: not a (run, seed) that params.yaml trains")
    jobs = sorted(set(jobs) | set(claim_jobs(params, studies)))
    score = bool(studies)
    with tempfile.TemporaryDirectory(prefix="drift-") as workdir, ThreadPoolExecutor(parallel) as pool:
        retrained = dict(zip(jobs, pool.map(lambda job: retrain(params_path, params, *job, workdir, score), jobs)))
    history_dir = Path("results/history")
    report = {
        "machine": machine(torch.device("cpu"), params["compute"]["threads"]),
        "kernels": {"native": library_versions(), "avx2": avx2_libraries()},
        "when": datetime.now(timezone.utc).isoformat(),
        "jobs": {
            f"{run}/{seed}": {"native": history_of(params, history_dir, run, seed), "avx2": history}
            for (run, seed), (history, _) in retrained.items()
        },
    }
    if studies:
        design = read_json(Path("results/design.json"), "the design written by lenet-mnist design")

        def values(kernels):
            def per_job(run, seed):
                if kernels == "avx2":
                    history, metrics = retrained[run, seed]
                else:
                    history = history_of(params, history_dir, run, seed)
                    metrics = read_metrics(Path("results/metrics") / run / f"{seed}.json", run, seed)
                return lambda claim: confirmed_value(claim, history, metrics)

            return {job: per_job(*job) for job in retrained}

        report["studies"] = judged_again(params, design, studies, values("native"), values("avx2"))
        flipped = [c for s in report["studies"].values() for c, v in s.items() if not v["kept"]]
        log.info(
            "%d claims judged again under AVX2 kernels; verdicts changed: %s",
            sum(map(len, report["studies"].values())),
            ", ".join(flipped) or "none",
        )
    write_json(out_path, report)
    log.info("%d jobs retrained under AVX2 kernels -> %s", len(jobs), out_path)


def avx2_libraries():
    """The libraries' report of themselves in a process under the AVX2 caps."""
    code = "import json; from lenet_mnist.bench.common import library_versions; print(json.dumps(library_versions()))"
    done = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **AVX2}, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)
