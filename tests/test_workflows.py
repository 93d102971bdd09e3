"""End to end: the real snakemake and dvc commands on the smoke params, in copies of the repository."""

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, SMOKE_PARAMS, commit_all, use_params
from lenet_mnist.download import OFFICIAL_MD5
from lenet_mnist.figures import fmt
from lenet_mnist.files import digest_of

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent  # snakemake, dvc and lenet-mnist of this environment


def run(cmd, cwd, env=None, check=True):
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **(env or {})}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def write_params(repo, params):
    (repo / "params.yaml").write_text(yaml.safe_dump(params))  # sorts keys too, which must not matter


def snakemake_jobs(repo, *args):
    """(rule, wildcards, command, outputs) of each job of a dry run."""
    out = run(["snakemake", "--dry-run", "--printshellcmds", "--cores", "4", *args], repo)
    jobs, job = [], None
    for line in (out.stdout + out.stderr).splitlines():
        if m := re.match(r"^(?:local)?rule (\w+):$", line):
            job = {"rule": m[1], "wildcards": "", "cmd": None, "outputs": frozenset()}
            jobs.append(job)
        elif job and (m := re.match(r"^\s+output: (.*)$", line)):
            job["outputs"] = frozenset(m[1].split(", "))
        elif job and (m := re.match(r"^\s+wildcards: (.*)$", line)):
            job["wildcards"] = m[1]
        elif job and line.startswith("Shell command: "):
            job["cmd"] = line.removeprefix("Shell command: ")
    return [j for j in jobs if j["rule"] != "all"]


def dvc_stages(repo):
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc:
        return {(stage.cmd, frozenset(str(o.def_path) for o in stage.outs)) for stage in dvc.index.stages}


def rerun_names(jobs):
    """Snakemake's jobs named as DVC names their stages: rule@run-seed, rule@fraction or rule."""
    names = set()
    for job in jobs:
        values = dict(pair.split("=") for pair in job["wildcards"].split(", ")) if job["wildcards"] else {}
        suffix = "-".join(values[k] for k in ("fraction", "run", "seed") if k in values)
        names.add(f"{job['rule']}@{suffix}" if suffix else job["rule"])
    return names


@pytest.mark.parametrize("params", [ROOT / "params.yaml", SMOKE_PARAMS], ids=["default", "smoke"])
def test_snakemake_and_dvc_run_the_same_commands_on_the_same_files(repo_copy, params):
    use_params(repo_copy, params)
    jobs = snakemake_jobs(repo_copy, "--forceall")
    assert {(j["cmd"], j["outputs"]) for j in jobs} == dvc_stages(repo_copy)
    expected = yaml.safe_load(params.read_text())
    assert sum(j["rule"] == "train" for j in jobs) == len(expected["runs"]) * len(expected["seeds"])


def test_adding_a_run_in_params_adds_its_jobs_to_both(repo_copy):
    params = use_params(repo_copy, SMOKE_PARAMS)
    params["runs"]["extra"] = {"model": "lenet", "optimizer": "adam", "policy": "none", "fraction": 0.005}
    write_params(repo_copy, params)
    jobs = snakemake_jobs(repo_copy, "--forceall")
    assert {"prepare@extra", "train@extra-0", "train@extra-1", "evaluate@extra-1", "plot@extra"} <= rerun_names(jobs)
    assert {(j["cmd"], j["outputs"]) for j in jobs} == dvc_stages(repo_copy)


def test_bad_params_stop_snakemake_before_any_job(repo_copy):
    params = use_params(repo_copy, SMOKE_PARAMS)
    params["runs"]["small"]["epochs"] = 0
    write_params(repo_copy, params)
    done = run(["snakemake", "--cores", "4"], repo_copy, check=False)
    assert done.returncode != 0
    assert done.stderr.strip() == "lenet-mnist: error: params.yaml: runs.small.epochs: 0 is less than the minimum of 1"
    assert not (repo_copy / "data").exists() and not (repo_copy / "logs").exists()


def check_outputs(repo, params):
    for name, md5 in OFFICIAL_MD5.items():
        assert digest_of(repo / "data/MNIST/raw" / name) == md5
    summary = json.loads((repo / "results/metrics.json").read_text())
    assert set(summary["runs"]) == set(params["runs"])
    for run in params["runs"]:
        for seed in params["seeds"]:
            metrics = json.loads((repo / f"results/metrics/{run}/{seed}.json").read_text())
            assert summary["runs"][run]["seeds"][str(seed)]["test_accuracy"] == metrics["test_accuracy"]
            assert metrics["n_test"] == 10_000 and sum(map(sum, metrics["confusion_matrix"])) == 10_000
            assert (repo / f"logs/train/{run}/{seed}.log").exists()
        assert summary["runs"][run]["test_accuracy"]["n"] == len(params["seeds"])
        assert (repo / f"results/plots/{run}.png").read_bytes()[:4] == b"\x89PNG"
    assert summary["studies"]["smoke"]["larger"] == summary["runs"]["larger"]["test_accuracy"]
    for figure in ["smoke", "smoke_sizes", "confusion"]:
        assert (repo / f"results/figures/{figure}.png").read_bytes()[:4] == b"\x89PNG"
        assert (repo / f"results/figures/{figure}.csv").stat().st_size > 0
    return summary


def report_numbers(summary):
    """How the captions and answers print each run's mean test accuracy and its interval."""
    return [fmt(stat["test_accuracy"]) for stat in summary["runs"].values()]


# An edit to params.yaml, and the jobs it must rerun: only those that read the edited key, and
# their descendants. The raw files are fixed by their md5s, so a new data source reruns only download.
EDITS = [
    (lambda p: p["runs"]["small"].update(epochs=2),
     {"prepare@small", "train@small-0", "train@small-1", "evaluate@small-0", "evaluate@small-1", "plot@small",
      "summarize", "figures"}),
    (lambda p: p["optimizers"]["adam"].update(lr=0.002),  # only the run that uses adam
     {"prepare@larger", "train@larger-0", "train@larger-1", "evaluate@larger-0", "evaluate@larger-1",
      "plot@larger", "summarize", "figures"}),
    (lambda p: p["data"].update(timeout_s=11), {"download"}),
]


def test_snakemake_builds_everything_then_reruns_only_what_an_edit_touches(repo_copy, wheel_cache):
    params = use_params(repo_copy, SMOKE_PARAMS)
    env = {"LENET_MNIST_CACHE": str(wheel_cache)}
    run(["snakemake", "--cores", "4"], repo_copy, env)
    summary = check_outputs(repo_copy, params)
    done = run(["snakemake", "--dry-run", "--cores", "4"], repo_copy, env)
    assert "Nothing to be done" in done.stdout + done.stderr

    # The report's text states the measured numbers, as computed from the metrics.
    texts = json.loads((repo_copy / "results/figures/report.json").read_text())
    for number in report_numbers(summary):
        assert number in texts["captions"]["smoke"] and number in texts["answers"]["smoke"]["answer"]
    [compared_test, _] = texts["seed_comparison"]
    assert compared_test == {"study": "smoke", "run": "small", "metric": "test_accuracy", "seed": "0.0000",
                             "ours": fmt(summary["runs"]["small"]["test_accuracy"])}
    run(["snakemake", "--report", "results/report.html"], repo_copy, env)
    html = (repo_copy / "results/report.html").read_text()
    for number in report_numbers(summary):
        assert number in html

    for edit, expected in EDITS:
        edited = copy.deepcopy(params)
        edit(edited)
        write_params(repo_copy, edited)
        assert rerun_names(snakemake_jobs(repo_copy)) == expected


def test_dvc_repro_in_a_git_copy_then_reruns_only_what_an_edit_touches(repo_copy, wheel_cache):
    params = use_params(repo_copy, SMOKE_PARAMS)
    env = {"LENET_MNIST_CACHE": str(wheel_cache)}
    commit_all(repo_copy, "smoke params")
    run(["dvc", "repro"], repo_copy, env)
    summary = check_outputs(repo_copy, params)
    assert "up to date" in run(["dvc", "status"], repo_copy, env).stdout
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], repo_copy, env).stdout)
    shown = shown[""]["data"]["results/metrics.json"]["data"]  # dvc leaves out the nulls
    assert {run: shown["runs"][run]["test_accuracy"] for run in summary["runs"]} == {
        run: stats["test_accuracy"] for run, stats in summary["runs"].items()}

    for edit, expected in EDITS:
        edit(params)
        write_params(repo_copy, params)
        out = run(["dvc", "repro"], repo_copy, env).stdout
        assert set(re.findall(r"Running stage '([^']+)'", out)) == expected
